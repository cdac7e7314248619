"""Read and validate inputs; quarantine bad rows with file, line, field and reason.

Members stream in chunks (CSV, Parquet or JSONL) so 2.3M members never sit in
memory at once; the recommendations file (JSONL, one line per member, normally
in the members file's order) is merged in lockstep. The catalog and offers are
small and loaded whole. A bad row never stops the run: it becomes a
``Quarantined`` record. A file that cannot be read at all is an
``InputFileError`` raised before any model call.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from pydantic import ValidationError

from .errors import InputFileError
from .models import Member, Offer, Product, Recommendation
from .scrub import has_invisible, header_safe, normalize_name

MEMBER_REQUIRED = ("member_id", "segment", "churn_risk", "opt_in_tier")
CATALOG_REQUIRED = ("product_id", "name", "category", "price")


@dataclass(frozen=True)
class Quarantined:
    file: str
    line: int
    field: str
    reason: str
    member_id: str | None = None
    kind: str = "member"  # member | name | recommendation | product | offer | suppression

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason,
                "member_id": self.member_id, "kind": self.kind}


@dataclass
class MemberRow:
    """A validated member with its recommendations, or the reason it was quarantined."""

    seq: int
    member: Member | None
    recommendations: tuple[Recommendation, ...] = ()
    quarantined: list[Quarantined] = field(default_factory=list)  # row-level (member invalid) or rec-level
    line: int = 0
    recently_bought: frozenset[str] = frozenset()
    returned: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        if self.member is not None:
            return self.member.member_id
        return f"invalid:{self.line}"


def _fmt_error(err: dict[str, Any]) -> tuple[str, str]:
    fld = ".".join(str(p) for p in err["loc"]) or "(row)"
    msg = err["msg"]
    if err["type"] == "missing":
        msg = "required value is missing"
    elif "input" in err and not isinstance(err["input"], (dict, list, tuple)):
        value = repr(err["input"])  # the bad value, so the fix is obvious (capped: a shifted row can be long)
        msg = f"{err['msg']} (got {value if len(value) <= 60 else value[:57] + '...'})"
    return fld, msg


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k is None:
            continue
        if isinstance(v, str):
            v = v.strip()
            if v == "":
                v = None
        elif isinstance(v, float) and v != v:
            v = None
        if v is not None:  # an empty cell is a missing value: defaults apply, required fields report "missing"
            out[k] = v
    return out


def _member_id(v: Any) -> str | None:
    """A member id as it may be shown in a quarantine record (one line, no invisible characters)."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    return header_safe(str(v))[:200] or None


# ----------------------------------------------------------------------------- raw readers

#: the longest value a field may hold (characters); a longer one quarantines its row (``inputs.max_field_chars``)
MAX_FIELD_CHARS = 100_000

_CSV_DEFAULT_LIMIT = 131_072  # csv.field_size_limit() as Python ships it

#: (field, reason) of a row that cannot be used as it is
Problem = tuple[str, str]


class _Lines:
    """The physical lines of a CSV file for ``csv.reader``: decoded one at a time (invalid UTF-8 becomes
    U+FFFD, reported per row), with line numbers, byte offsets and the double quotes seen since
    ``mark()``, so that a broken record can be quarantined and reading can resume after it."""

    def __init__(self, fh):
        self.fh = fh
        self.line = 0  # physical lines read so far
        self.offset = 0  # byte offset of the next line
        self.quotes = 0  # '"' characters in the lines read since mark()
        self.text: list[str] = []  # those lines (kept only until the next mark)
        self.mark_line = 1
        self.mark_offset = 0
        self.first_len = 0  # bytes of the first line after the mark

    def __iter__(self):
        return self

    def __next__(self) -> str:
        raw = self.fh.readline()
        if not raw:
            raise StopIteration
        n = len(raw)
        if not self.text:
            self.first_len = n
        self.line += 1
        self.offset += n
        if b'"' in raw:
            self.quotes += raw.count(b'"')
        text = raw.decode("utf-8", errors="replace")
        self.text.append(text)
        return text

    def mark(self) -> None:
        self.mark_line, self.mark_offset = self.line + 1, self.offset
        self.quotes = 0
        self.text = []

    def skip_quoted(self) -> bool:
        """Read on until a quote left open by the lines since mark() closes; False at the end of the file."""
        self.quotes = 1
        while self.quotes % 2:
            raw = self.fh.readline()
            if not raw:
                return False
            self.line += 1
            self.offset += len(raw)
            self.quotes += raw.count(b'"')
        return True

    def resume_after_first_line(self) -> None:
        """Go back to the line after the one where the broken record began."""
        self.fh.seek(self.mark_offset + self.first_len)
        self.offset = self.mark_offset + self.first_len
        self.line = self.mark_line


def _split_raw(text: str, keep: int = 200) -> tuple[list[int], list[str], bool]:
    """Field lengths and (the first ``keep`` characters of) values of raw CSV text, as far as it goes, and
    whether it ends inside a quoted value (as ``csv`` reads it: a quote opens a quoted value only at the
    start of a field)."""
    lengths = [0]
    values: list[list[str]] = [[]]
    quoted = False
    start = True
    i, n = 0, len(text)

    def add(ch: str) -> None:
        lengths[-1] += 1
        if lengths[-1] <= keep:
            values[-1].append(ch)

    while i < n:
        ch = text[i]
        if quoted:
            if ch == '"':
                if i + 1 < n and text[i + 1] == '"':
                    add(ch)
                    i += 1
                else:
                    quoted = False
            else:
                add(ch)
        elif ch == '"' and start:
            quoted = True
        elif ch == ",":
            lengths.append(0)
            values.append([])
            start = True
            i += 1
            continue
        elif ch not in "\r\n":
            add(ch)
        start = False
        i += 1
    return lengths, ["".join(v) for v in values], quoted


def _column(header: list[str], i: int) -> str:
    return header[i] if i < len(header) else f"column {i + 1}"


def _iter_csv(path: Path, max_field_chars: int = MAX_FIELD_CHARS) -> Iterator[tuple[int, dict[str, Any], list[Problem]]]:
    """Yields (line, row, problems). Problems: shifted columns, invalid UTF-8, a value longer than
    ``max_field_chars``, a quote that is never closed, stray line breaks. None of them stops the file:
    reading goes on after the broken record."""
    # the csv module's limit is process-wide: never lower it below its default (other readers share it);
    # values between max_field_chars and the limit are caught by length below
    csv.field_size_limit(max(max_field_chars, _CSV_DEFAULT_LIMIT))
    with open(path, "rb") as fh:
        lines = _Lines(fh)
        reader = csv.reader(lines)
        try:
            header = next(reader)
        except StopIteration:
            raise InputFileError("file is empty (no header row)", file=str(path), line=1,
                                 hint="write a header row with the column names") from None
        except csv.Error as e:
            raise InputFileError(f"the header row cannot be read ({e})", file=str(path), line=1,
                                 hint="write a header row of column names separated by commas") from None
        header = [h.strip().lstrip("\ufeff") for h in header]
        n = len(header)
        while True:
            lines.mark()
            start = lines.mark_line
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                lengths, values, open_quote = _split_raw("".join(lines.text))
                known = {_column(header, i): v for i, (v, k) in enumerate(zip(values, lengths))
                         if k <= max_field_chars and i < n}  # what can be told of the row (its member id)
                too_long = [i for i, k in enumerate(lengths) if k > max_field_chars]
                if too_long:
                    fld = _column(header, too_long[0])
                    reason = (f"value is longer than {max_field_chars:,} characters; shorten it, or raise "
                              "inputs.max_field_chars in the campaign file")
                else:
                    fld = _column(header, len(lengths) - 1)
                    reason = f"the row cannot be read as CSV ({e}); quote values that contain line breaks"
                if open_quote and not lines.skip_quoted():
                    reason = ("a quoted value opened on this line is never closed; the lines after it are read "
                              "as rows of their own. Close the quote (or double a quote inside a value)")
                    fld = _column(header, len(lengths) - 1)
                    lines.resume_after_first_line()
                yield start, known, [(fld, reason)]
                reader = csv.reader(lines)
                continue
            if not values:
                continue
            if len(lines.text) > 1 and (lines.quotes % 2 or any(
                    part.count(",") >= max(n - 1, 3) for v in values if "\n" in v for part in v.split("\n")[1:])):
                # a quote opened on this line closed lines later (or never): the rows in between were
                # swallowed into one value; quarantine this line and read the next ones as rows
                lengths, values, _ = _split_raw(lines.text[0])
                known = {_column(header, i): v for i, v in enumerate(values[:-1]) if i < n}
                yield start, known, [(_column(header, len(lengths) - 1),
                                   f"a quoted value opened on this line runs on to line {lines.line} (a quote is "
                                   "missing or not doubled); the lines after it are read as rows of their own")]
                lines.resume_after_first_line()
                reader = csv.reader(lines)
                continue
            problems: list[Problem] = []
            if max(map(len, values)) > max_field_chars:
                long_at = next(i for i, v in enumerate(values) if len(v) > max_field_chars)
                problems.append((_column(header, long_at), f"value is longer than {max_field_chars:,} characters; "
                                 "shorten it, or raise inputs.max_field_chars in the campaign file"))
            if len(values) != n:
                problems.append(("(row)", f"row has {len(values)} fields but the header has {n}: a column is "
                                 "shifted or a value contains an unquoted comma; quote the value or fix the row"))
            if any("\ufffd" in v for v in values):
                problems.append(("(row)", "row contains bytes that are not valid UTF-8; re-save the file as UTF-8"))
            yield start, dict(zip(header, values)), problems


def _oversized(row: dict[str, Any], max_field_chars: int) -> list[Problem]:
    for k, v in row.items():
        if isinstance(v, str) and len(v) > max_field_chars:
            return [(str(k), f"value is longer than {max_field_chars:,} characters; shorten it, or raise "
                             "inputs.max_field_chars in the campaign file")]
    return []


def _iter_jsonl(path: Path, max_field_chars: int = MAX_FIELD_CHARS) -> Iterator[tuple[int, dict[str, Any], list[Problem]]]:
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield no, {}, [("(row)", f"line is not valid UTF-8 (byte {e.start}); re-save the file as UTF-8")]
                continue
            try:
                obj = json.loads(text)
            except (json.JSONDecodeError, RecursionError) as e:
                msg = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else "nested too deeply"
                yield no, {}, [("(row)", f"line is not valid JSON ({msg})")]
                continue
            if not isinstance(obj, dict):
                yield no, {}, [("(row)", "line must be a JSON object")]
                continue
            yield no, obj, _oversized(obj, max_field_chars)


def _iter_parquet(path: Path, batch_size: int = 65536,
                  max_field_chars: int = MAX_FIELD_CHARS) -> Iterator[tuple[int, dict[str, Any], list[Problem]]]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise InputFileError(f"cannot read Parquet file: {e}", file=str(path),
                             hint="re-export the file as Parquet, or use CSV/JSONL") from None
    row = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for rec in batch.to_pylist():
            row += 1
            yield row, rec, _oversized(rec, max_field_chars)  # Parquet has no lines: "line" is the row number


def iter_rows(path: Path, max_field_chars: int = MAX_FIELD_CHARS) -> Iterator[tuple[int, dict[str, Any], list[Problem]]]:
    path = Path(path)
    if not path.exists():
        raise InputFileError("input file not found (was it moved or deleted during the run?)", file=str(path),
                             hint="restore the file and re-run the same command to resume")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _iter_csv(path, max_field_chars)
    if suffix in (".jsonl", ".ndjson"):
        return _iter_jsonl(path, max_field_chars)
    if suffix in (".parquet", ".pq"):
        return _iter_parquet(path, max_field_chars=max_field_chars)
    raise InputFileError(f"unsupported file type {suffix!r}", file=str(path),
                         hint="use .csv, .parquet or .jsonl")


def _check_header(path: Path, required: tuple[str, ...]) -> None:
    """A file missing a required column entirely is a file error, not N row errors."""
    if path.suffix.lower() == ".csv":
        csv.field_size_limit(max(csv.field_size_limit(), _CSV_DEFAULT_LIMIT))
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            try:
                header = [h.strip().lstrip("\ufeff") for h in next(csv.reader(fh), [])]
            except csv.Error as e:
                raise InputFileError(f"the header row cannot be read ({e})", file=str(path), line=1,
                                     hint="write a header row of column names separated by commas") from None
    elif path.suffix.lower() in (".parquet", ".pq"):
        header = pq.read_schema(path).names
    else:
        return
    missing = [c for c in required if c not in header]
    if missing:
        raise InputFileError(f"missing column(s) {', '.join(missing)}", file=str(path), line=1,
                             hint=f"add the column(s) to the header; required: {', '.join(required)}")


# ----------------------------------------------------------------------------- catalog and offers

def load_catalog(path: Path, max_field_chars: int = MAX_FIELD_CHARS) -> tuple[dict[str, Product], list[Quarantined]]:
    _check_header(Path(path), CATALOG_REQUIRED)
    catalog: dict[str, Product] = {}
    bad: list[Quarantined] = []
    for line, row, problems in iter_rows(path, max_field_chars):
        if problems:
            bad.append(Quarantined(str(path), line, *problems[0], kind="product"))
            continue
        row = _clean(row)
        claims = row.get("claims")
        if isinstance(claims, str):
            row["claims"] = tuple(c.strip() for c in claims.split(";") if c.strip())
        elif claims is None:
            row["claims"] = ()
        if isinstance(row.get("in_stock"), str):
            row["in_stock"] = row["in_stock"].lower() in ("true", "1", "yes", "y")
        try:
            p = Product.model_validate(row)
        except ValidationError as e:
            fld, msg = _fmt_error(e.errors()[0])
            bad.append(Quarantined(str(path), line, fld, msg, kind="product"))
            continue
        if p.product_id in catalog:
            bad.append(Quarantined(str(path), line, "product_id", f"duplicate product id {p.product_id}",
                                   kind="product"))
            continue
        catalog[p.product_id] = p
    return catalog, bad


def load_offers(path: Path, max_field_chars: int = MAX_FIELD_CHARS) -> tuple[list[Offer], list[Quarantined]]:
    offers: list[Offer] = []
    bad: list[Quarantined] = []
    for line, row, problems in iter_rows(path, max_field_chars):
        if problems:
            bad.append(Quarantined(str(path), line, *problems[0], kind="offer"))
            continue
        row = _clean(row)
        for key in ("applies_to",):
            if isinstance(row.get(key), str):
                row[key] = tuple(x.strip() for x in row[key].split(";") if x.strip())
        try:
            offers.append(Offer.model_validate(row))
        except ValidationError as e:
            fld, msg = _fmt_error(e.errors()[0])
            bad.append(Quarantined(str(path), line, fld, msg, kind="offer"))
    return offers, bad


def load_suppression(paths: tuple[Path, ...]) -> frozenset[str]:
    """Suppression lists: one member id or sha256 email hash per line; '#' comments allowed."""
    out: set[str] = set()
    for p in paths:
        with open(p, encoding="utf-8", errors="replace") as fh:
            for raw in fh:
                s = raw.strip()
                if s and not s.startswith("#"):
                    out.add(s.lower() if len(s) == 64 else s)
    return frozenset(out)


# ----------------------------------------------------------------------------- members + recommendations

def _parse_recs(obj: dict[str, Any], path: Path, line: int, catalog: dict[str, Product],
                member_id: str) -> tuple[tuple[Recommendation, ...], list[Quarantined]]:
    recs: list[Recommendation] = []
    bad: list[Quarantined] = []
    raw = obj.get("recommendations")
    if raw is None:
        return (), []
    if isinstance(raw, str):  # CSV/Parquet carry it as a JSON string
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as e:
            return (), [Quarantined(str(path), line, "recommendations", f"not valid JSON: {e.msg}",
                                    member_id, "recommendation")]
    if not isinstance(raw, list):
        return (), [Quarantined(str(path), line, "recommendations", "must be a list", member_id, "recommendation")]
    for i, item in enumerate(raw):
        try:
            rec = Recommendation.model_validate(item)
        except ValidationError as e:
            fld, msg = _fmt_error(e.errors()[0])
            bad.append(Quarantined(str(path), line, f"recommendations[{i}].{fld}", msg, member_id, "recommendation"))
            continue
        if rec.product_id not in catalog:
            bad.append(Quarantined(str(path), line, f"recommendations[{i}].product_id",
                                   f"unknown product {rec.product_id!r} (not in the catalog); the other "
                                   "recommendations are used", member_id, "recommendation"))
            continue
        recs.append(rec)
    return tuple(recs), bad


class _RecMerger:
    """Lockstep reader of the recommendations file with a lookahead buffer for out-of-order lines."""

    def __init__(self, path: Path, max_field_chars: int = MAX_FIELD_CHARS):
        self.path = Path(path)
        self._it = iter_rows(self.path, max_field_chars)
        self._buffer: dict[str, tuple[int, dict[str, Any]]] = {}
        self.problems: list[Quarantined] = []
        self._done = False

    def take(self, member_id: str) -> tuple[int, dict[str, Any]] | None:
        if member_id in self._buffer:
            return self._buffer.pop(member_id)
        while not self._done:
            try:
                line, obj, problems = next(self._it)
            except StopIteration:
                self._done = True
                break
            if problems:
                self.problems.append(Quarantined(str(self.path), line, *problems[0], None, "recommendation"))
                continue
            mid = str(obj.get("member_id") or "")
            if mid == member_id:
                return line, obj
            if mid:
                self._buffer[mid] = (line, obj)
                if len(self._buffer) > 200_000:
                    raise InputFileError("recommendations file is far out of step with the members file",
                                         file=str(self.path), line=line,
                                         hint="sort the recommendations file in the members file's order")
        return None


def iter_members(members_path: Path, recs_path: Path, catalog: dict[str, Product], *,
                 max_field_chars: int = MAX_FIELD_CHARS) -> Iterator[MemberRow]:
    """Yield every member row once, in file order, validated, with recommendations attached.

    The first name is normalized here, once (``scrub.normalize_name``): a name that is not one is
    dropped (the member is greeted with "Hi there,") and the reason is quarantined with file, line
    and field while the member goes on."""
    members_path = Path(members_path)
    _check_header(members_path, MEMBER_REQUIRED)
    merger = _RecMerger(recs_path, max_field_chars)
    seen: set[str] = set()
    seq = 0
    for line, row, problems in iter_rows(members_path, max_field_chars):
        seq += 1
        mid = _member_id(row.get("member_id"))
        if problems:
            yield MemberRow(seq, None, (), [Quarantined(str(members_path), line, *problems[0], mid)], line)
            continue
        row = _clean(row)
        notes: list[Quarantined] = []
        if isinstance(row.get("first_name"), str):
            name, why = normalize_name(row["first_name"])
            row["first_name"] = name
            if why:
                notes.append(Quarantined(str(members_path), line, "first_name",
                                         f"first name not used: it {why}; the member is greeted with 'Hi there,'",
                                         mid, "name"))
        try:
            member = Member.model_validate(row)
        except ValidationError as e:
            fld, msg = _fmt_error(e.errors()[0])
            yield MemberRow(seq, None, (), [Quarantined(str(members_path), line, fld, msg, mid)], line)
            continue
        if has_invisible(member.member_id):
            yield MemberRow(seq, None, (), [Quarantined(
                str(members_path), line, "member_id", "member id contains control or invisible characters "
                "(line breaks, NUL, bidi or zero-width characters); fix the id in the source system", mid)], line)
            continue
        if member.member_id in seen:
            yield MemberRow(seq, None, (), [Quarantined(str(members_path), line, "member_id",
                                                        f"duplicate member id {member.member_id}; the first row "
                                                        "is used", member.member_id)], line)
            continue
        seen.add(member.member_id)
        found = merger.take(member.member_id)
        recs: tuple[Recommendation, ...] = ()
        bad: list[Quarantined] = notes
        bought: frozenset[str] = frozenset()
        returned: frozenset[str] = frozenset()
        if found is not None:
            rline, obj = found
            recs, rec_bad = _parse_recs(obj, Path(recs_path), rline, catalog, member.member_id)
            bad.extend(rec_bad)
            bought = frozenset(str(x) for x in obj.get("recently_bought") or () if x)
            returned = frozenset(str(x) for x in obj.get("returned") or () if x)
        if merger.problems:
            bad.extend(merger.problems)
            merger.problems = []
        yield MemberRow(seq, member, recs, bad, line, bought, returned)
