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

MEMBER_REQUIRED = ("member_id", "segment", "churn_risk", "opt_in_tier")
CATALOG_REQUIRED = ("product_id", "name", "category", "price")


@dataclass(frozen=True)
class Quarantined:
    file: str
    line: int
    field: str
    reason: str
    member_id: str | None = None
    kind: str = "member"  # member | recommendation | product | offer | suppression

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


# ----------------------------------------------------------------------------- raw readers

def _iter_csv(path: Path) -> Iterator[tuple[int, dict[str, Any], list[str]]]:
    """Yields (line, row, problems). Problems: shifted columns, invalid UTF-8."""
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise InputFileError("file is empty (no header row)", file=str(path), line=1,
                                 hint="write a header row with the column names") from None
        header = [h.strip().lstrip("\ufeff") for h in header]
        n = len(header)
        line = reader.line_num
        for values in reader:
            start, line = line + 1, reader.line_num
            if not values:
                continue
            problems = []
            if len(values) != n:
                problems.append(f"row has {len(values)} fields but the header has {n}: a column is shifted or a "
                                "value contains an unquoted comma; quote the value or fix the row")
            if any("\ufffd" in v for v in values):
                problems.append("row contains bytes that are not valid UTF-8; re-save the file as UTF-8")
            yield start, dict(zip(header, values)), problems


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any], list[str]]]:
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield no, {}, [f"line is not valid UTF-8 (byte {e.start}); re-save the file as UTF-8"]
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                yield no, {}, [f"line is not valid JSON ({e.msg} at column {e.colno})"]
                continue
            if not isinstance(obj, dict):
                yield no, {}, ["line must be a JSON object"]
                continue
            yield no, obj, []


def _iter_parquet(path: Path, batch_size: int = 65536) -> Iterator[tuple[int, dict[str, Any], list[str]]]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise InputFileError(f"cannot read Parquet file: {e}", file=str(path),
                             hint="re-export the file as Parquet, or use CSV/JSONL") from None
    row = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        for rec in batch.to_pylist():
            row += 1
            yield row, rec, []  # Parquet has no lines: "line" is the 1-based row number


def iter_rows(path: Path) -> Iterator[tuple[int, dict[str, Any], list[str]]]:
    path = Path(path)
    if not path.exists():
        raise InputFileError("input file not found (was it moved or deleted during the run?)", file=str(path),
                             hint="restore the file and re-run the same command to resume")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _iter_csv(path)
    if suffix in (".jsonl", ".ndjson"):
        return _iter_jsonl(path)
    if suffix in (".parquet", ".pq"):
        return _iter_parquet(path)
    raise InputFileError(f"unsupported file type {suffix!r}", file=str(path),
                         hint="use .csv, .parquet or .jsonl")


def _check_header(path: Path, required: tuple[str, ...]) -> None:
    """A file missing a required column entirely is a file error, not N row errors."""
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            header = [h.strip().lstrip("\ufeff") for h in next(csv.reader(fh), [])]
    elif path.suffix.lower() in (".parquet", ".pq"):
        header = pq.read_schema(path).names
    else:
        return
    missing = [c for c in required if c not in header]
    if missing:
        raise InputFileError(f"missing column(s) {', '.join(missing)}", file=str(path), line=1,
                             hint=f"add the column(s) to the header; required: {', '.join(required)}")


# ----------------------------------------------------------------------------- catalog and offers

def load_catalog(path: Path) -> tuple[dict[str, Product], list[Quarantined]]:
    _check_header(Path(path), CATALOG_REQUIRED)
    catalog: dict[str, Product] = {}
    bad: list[Quarantined] = []
    for line, row, problems in iter_rows(path):
        if problems:
            bad.append(Quarantined(str(path), line, "(row)", problems[0], kind="product"))
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


def load_offers(path: Path) -> tuple[list[Offer], list[Quarantined]]:
    offers: list[Offer] = []
    bad: list[Quarantined] = []
    for line, row, problems in iter_rows(path):
        if problems:
            bad.append(Quarantined(str(path), line, "(row)", problems[0], kind="offer"))
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

    def __init__(self, path: Path):
        self.path = Path(path)
        self._it = iter_rows(self.path)
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
                self.problems.append(Quarantined(str(self.path), line, "(row)", problems[0], None, "recommendation"))
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


def iter_members(members_path: Path, recs_path: Path, catalog: dict[str, Product]) -> Iterator[MemberRow]:
    """Yield every member row once, in file order, validated, with recommendations attached."""
    members_path = Path(members_path)
    _check_header(members_path, MEMBER_REQUIRED)
    merger = _RecMerger(recs_path)
    seen: set[str] = set()
    seq = 0
    for line, row, problems in iter_rows(members_path):
        seq += 1
        mid = str(row.get("member_id") or "").strip() or None
        if problems:
            yield MemberRow(seq, None, (), [Quarantined(str(members_path), line, "(row)", problems[0], mid)], line)
            continue
        row = _clean(row)
        try:
            member = Member.model_validate(row)
        except ValidationError as e:
            fld, msg = _fmt_error(e.errors()[0])
            yield MemberRow(seq, None, (), [Quarantined(str(members_path), line, fld, msg, mid)], line)
            continue
        if member.member_id in seen:
            yield MemberRow(seq, None, (), [Quarantined(str(members_path), line, "member_id",
                                                        f"duplicate member id {member.member_id}; the first row "
                                                        "is used", member.member_id)], line)
            continue
        seen.add(member.member_id)
        found = merger.take(member.member_id)
        recs: tuple[Recommendation, ...] = ()
        bad: list[Quarantined] = []
        bought: frozenset[str] = frozenset()
        returned: frozenset[str] = frozenset()
        if found is not None:
            rline, obj = found
            recs, bad = _parse_recs(obj, Path(recs_path), rline, catalog, member.member_id)
            bought = frozenset(str(x) for x in obj.get("recently_bought") or () if x)
            returned = frozenset(str(x) for x in obj.get("returned") or () if x)
        if merger.problems:
            bad.extend(merger.problems)
            merger.problems = []
        yield MemberRow(seq, member, recs, bad, line, bought, returned)
