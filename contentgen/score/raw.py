"""Read the raw inputs of ``contentgen score`` in batches, check them, and spread them over partitions.

Three files (CSV or Parquet, found in RAW_DIR by name or given one by one):

============== ==============================================================
attributes     member_id, opt_in_tier (1-3) required; first_name, email, age,
               locale, timezone, status, channels, preferred_channel,
               stated_preferences, enrolled_on (YYYY-MM-DD) passed through
transactions   member_id, ts, product_id, amount required; order_id,
               quantity, discount (0/1), points, returned (0/1) optional
events         member_id, ts, event (email_open, email_click, browse,
               complaint; others are counted and left out), product_id
============== ==============================================================

``ts`` is an ISO 8601 time (``2026-11-03T14:05:09Z``, an offset, or no zone:
UTC) or a Parquet timestamp. A bad row (missing or unknown member id, a time
or number that does not parse, a negative amount or one over 10 million, a tier outside 1-3, a
repeated member id) is quarantined with file, line, field and reason and the
rest goes on; a file that cannot be read, or lacks a required column, stops
the command with what to fix.

Streaming: attributes are read twice (ids and checks first, then the rows),
transactions and events once, in batches; every row goes to the partition of
its member (consecutive blocks of :data:`BLOCK` members in attribute-file
order), written as compressed Arrow IPC files in a scratch folder. The only
thing kept for all members is a sorted array of 64-bit id hashes (8 bytes a
member) to find a row's member.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputFileError

__all__ = ["RawInputs", "Quarantine", "MemberIndex", "Partitions", "find_inputs", "read_attributes",
           "spread_activity", "BLOCK", "EVENT_KINDS"]

BLOCK = 8_192  # members per partition
BATCH_ROWS = 100_000
EVENT_KINDS = ("email_open", "email_click", "browse", "complaint")
ATTR_REQUIRED = ("member_id", "opt_in_tier")
TX_REQUIRED = ("member_id", "ts", "product_id", "amount")
EV_REQUIRED = ("member_id", "ts", "event")
MAX_EXAMPLES = 200  # quarantine records kept per file and field (all are counted)
MAX_AMOUNT = 10_000_000.0  # a transaction line above this (or quantity, points) is taken for a data error

#: a transaction line and an event in the scratch files (fixed width, little-endian)
TX_DTYPE = np.dtype([("m", "<i4"), ("t", "<i8"), ("item", "<i4"), ("amount", "<f8"), ("discount", "i1"),
                     ("points", "<f8"), ("returned", "i1"), ("order", "<u8")])
EV_DTYPE = np.dtype([("m", "<i4"), ("t", "<i8"), ("kind", "i1"), ("item", "<i4")])


@dataclass(frozen=True)
class RawInputs:
    attributes: Path
    transactions: Path
    events: Path


def find_inputs(raw_dir: Path | None, attributes: Path | None = None, transactions: Path | None = None,
                events: Path | None = None) -> RawInputs:
    """The three files: given explicitly, else RAW_DIR/NAME.csv|.parquet."""
    found: dict[str, Path] = {}
    for name, given in (("attributes", attributes), ("transactions", transactions), ("events", events)):
        if given is not None:
            p = Path(given)
        elif raw_dir is not None:
            cands = [Path(raw_dir) / f"{name}.{ext}" for ext in ("parquet", "pq", "csv")]
            p = next((c for c in cands if c.exists()), cands[-1])
        else:
            raise InputFileError(f"no {name} file", hint=f"pass RAW_DIR (with {name}.csv or .parquet) or --{name}")
        if not p.is_file():
            raise InputFileError(f"{name} file not found", file=str(p),
                                 hint=f"write {name}.csv or {name}.parquet there (contentgen sample-data DIR --raw "
                                      "writes an example), or pass --" + name)
        if p.suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise InputFileError(f"unsupported file type {p.suffix!r}", file=str(p), hint="use .csv or .parquet")
        found[name] = p
    return RawInputs(**found)


@dataclass
class Quarantine:
    """Bad raw rows: every one counted by (file, field), the first MAX_EXAMPLES of each kept as records."""

    counts: Counter = field(default_factory=Counter)
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, path: Path, lines: np.ndarray, fld: str, reason: str | list[str],
            member_ids: list[str | None] | None = None) -> None:
        if not len(lines):
            return
        key = (str(path), fld)
        room = MAX_EXAMPLES - self.counts[key]
        self.counts[key] += len(lines)
        for i in range(min(room, len(lines))):
            why = reason[i] if isinstance(reason, list) else reason
            self.records.append({"file": str(path), "line": int(lines[i]), "field": fld, "reason": why,
                                 "member_id": member_ids[i] if member_ids else None, "kind": "raw"})

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> list[dict[str, Any]]:
        return [{"file": f, "field": k, "rows": n} for (f, k), n in sorted(self.counts.items())]


# ----------------------------------------------------------------------------- reading


def _header(path: Path) -> list[str]:
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            return [h.strip().lstrip("\ufeff") for h in next(csv.reader(fh), [])]
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path).names
    except Exception as e:  # pyarrow raises several kinds for a corrupt file
        raise InputFileError(f"cannot read Parquet file: {e}", file=str(path),
                             hint="re-export the file as Parquet, or use CSV") from None


def _check_columns(path: Path, required: tuple[str, ...]) -> list[str]:
    cols = _header(path)
    if not cols:
        raise InputFileError("file is empty (no header row)", file=str(path), line=1,
                             hint="write a header row with the column names")
    missing = [c for c in required if c not in cols]
    if missing:
        raise InputFileError(f"missing column(s) {', '.join(missing)}", file=str(path), line=1,
                             hint=f"add the column(s) to the header; required: {', '.join(required)}")
    return cols


def iter_batches(path: Path, columns: list[str] | None = None,
                 batch_rows: int = BATCH_ROWS) -> Iterator[tuple[np.ndarray, pa.Table]]:
    """(line numbers, table) per batch. CSV: every column as text, line = row + 1 (the header is line 1).
    Parquet: typed columns, line = the 1-based row number."""
    path = Path(path)
    cols = _header(path)
    want = [c for c in (columns or cols) if c in cols]
    row = 0
    try:
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            reader = pcsv.open_csv(
                path, read_options=pcsv.ReadOptions(block_size=8 << 20),
                parse_options=pcsv.ParseOptions(newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(column_types={c: pa.string() for c in cols},
                                                    include_columns=want, strings_can_be_null=False,
                                                    quoted_strings_can_be_null=False))
            for batch in reader:
                n = batch.num_rows
                yield np.arange(row + 2, row + 2 + n), pa.Table.from_batches([batch])
                row += n
        else:
            import pyarrow.parquet as pq

            # pre_buffer (the default) keeps every row group's compressed bytes until the file is closed:
            # at 2.3M members that was half a gigabyte; a buffered stream reads as it goes
            pf = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
            for batch in pf.iter_batches(batch_size=batch_rows, columns=want):
                n = batch.num_rows
                yield np.arange(row + 1, row + 1 + n), pa.Table.from_batches([batch])
                row += n
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as e:
        raise InputFileError(f"cannot read the file near line {row + 2}: {e}", file=str(path),
                             hint="fix the row (quote values with commas, save as UTF-8) and run score again") from None


def _text(arr: pa.ChunkedArray | pa.Array | None, n: int) -> np.ndarray:
    """A column as a numpy object array of str ('' for missing)."""
    if arr is None:
        return np.full(n, "", dtype=object)
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return np.asarray(pc.fill_null(arr, "").to_numpy(zero_copy_only=False), dtype=object)


def _numbers(arr, n: int, default: float = np.nan) -> tuple[np.ndarray, np.ndarray]:
    """(float values, bad mask): a blank is ``default`` and not bad; text that is not a number is bad."""
    if arr is None:
        return np.full(n, default), np.zeros(n, dtype=bool)
    if pa.types.is_boolean(arr.type):
        arr = pc.cast(arr, pa.int8())
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type):
        v = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        v = np.where(np.isnan(v), default, v)
        return v, np.zeros(n, dtype=bool)
    s = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    blank = np.asarray(pc.fill_null(pc.equal(s, ""), True).to_numpy(zero_copy_only=False))
    low = pc.utf8_lower(s)
    s = pc.if_else(pc.equal(low, "true"), "1", pc.if_else(pc.equal(low, "false"), "0", s))
    try:
        v = pc.cast(pc.if_else(pc.equal(s, ""), None, s), pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        v = pd.to_numeric(pd.Series(s.to_numpy(zero_copy_only=False), dtype=object), errors="coerce").to_numpy(
            dtype=float)
    bad = np.isnan(v) & ~blank
    v = np.where(blank, default, v)
    return v, bad


def _times(arr, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(UTC epoch seconds, bad mask). ISO 8601 text (Z, an offset, or none = UTC; a date alone is midnight)."""
    if arr is None:
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:
            arr = pc.assume_timezone(arr, "UTC")
        v = pc.cast(pc.cast(arr, pa.timestamp("s", tz="UTC")), pa.int64())
        bad = np.asarray(pc.is_null(v).to_numpy(zero_copy_only=False))
        return np.asarray(pc.fill_null(v, 0).to_numpy(zero_copy_only=False), dtype=np.int64), bad
    if pa.types.is_date(arr.type):
        v = pc.cast(pc.cast(arr, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)
        bad = np.isnan(v) if v.dtype.kind == "f" else np.zeros(n, dtype=bool)
        return np.nan_to_num(v).astype(np.int64) * 86_400, bad
    s = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    for target in (pa.timestamp("s", tz="UTC"), pa.timestamp("s")):
        try:
            v = pc.cast(pc.cast(s, target), pa.int64()).to_numpy(zero_copy_only=False)
            return np.asarray(v, dtype=np.int64), np.zeros(n, dtype=bool)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    parsed = pd.to_datetime(pd.Series(s.to_numpy(zero_copy_only=False), dtype=object), utc=True, errors="coerce",
                            format="ISO8601")
    bad = parsed.isna().to_numpy().copy()
    secs = parsed.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)  # any unit -> seconds
    return np.where(bad, 0, secs).astype(np.int64), bad


def hash_ids(ids: np.ndarray) -> np.ndarray:
    """64-bit hashes of member ids (pandas' fixed-key SipHash: the same on every machine and run)."""
    return pd.util.hash_array(np.asarray(ids, dtype=object), categorize=False)


class MemberIndex:
    """member id -> index in attribute-file order (accepted rows only), by a sorted array of hashes."""

    def __init__(self, sorted_hashes: np.ndarray, members: np.ndarray) -> None:
        """``sorted_hashes`` ascending, ``members`` the member index of each."""
        self.sorted = sorted_hashes
        self.order = members.astype(np.int32 if len(members) < 2**31 else np.int64)
        self.n = len(sorted_hashes)

    def lookup(self, arr) -> np.ndarray:
        """Index of each id (-1: unknown or missing). Hashes each distinct id of the batch once."""
        if arr is None:
            return np.array([], dtype=np.int64)
        enc = pc.dictionary_encode(pc.cast(arr, pa.string()))
        if isinstance(enc, pa.ChunkedArray):
            enc = enc.combine_chunks()
        uniq = np.asarray(enc.dictionary.to_numpy(zero_copy_only=False), dtype=object)
        codes = enc.indices.to_numpy(zero_copy_only=False)
        if not len(uniq):
            return np.full(len(codes), -1, dtype=np.int64)
        uniq = np.array([u.strip() for u in uniq], dtype=object)
        found = np.full(len(uniq), -1, dtype=np.int64)
        if self.n:
            h = hash_ids(uniq)
            pos = np.searchsorted(self.sorted, h).clip(0, self.n - 1)
            found = np.where(self.sorted[pos] == h, self.order[pos], -1)
        found[uniq == ""] = -1
        if codes.dtype.kind == "f":  # nulls among the codes
            codes = np.where(np.isnan(codes), -1, codes)
        codes = codes.astype(np.int64)
        return np.where(codes >= 0, found[np.maximum(codes, 0)], -1).astype(np.int64)


# ----------------------------------------------------------------------------- attributes


def read_attributes(path: Path, q: Quarantine) -> tuple[MemberIndex, np.ndarray, np.ndarray]:
    """First pass: check ids and the fields score relies on. Returns (index, accepted-row mask over file rows,
    member index per file row (-1 for rejected rows))."""
    _check_columns(path, ATTR_REQUIRED)
    hashes: list[np.ndarray] = []
    ok_parts: list[np.ndarray] = []
    for lines, tab in iter_batches(path, ["member_id", "opt_in_tier", "age", "enrolled_on"]):
        n = tab.num_rows
        ids = _text(pc.utf8_trim_whitespace(pc.cast(tab.column("member_id"), pa.string())), n)
        missing = ids == ""
        q.add(path, lines[missing], "member_id", "required value is missing")
        tier, bad_t = _numbers(tab.column("opt_in_tier"), n)
        bad_tier = ~missing & (bad_t | ~np.isin(tier, (1, 2, 3)))
        q.add(path, lines[bad_tier], "opt_in_tier",
              [f"opt_in_tier must be 1, 2 or 3 (got {v!r})" for v in _text(tab.column("opt_in_tier"), n)[bad_tier]],
              list(ids[bad_tier]))
        bad = missing | bad_tier
        if "age" in tab.column_names:
            age, bad_a = _numbers(tab.column("age"), n)
            bad_a = bad_a & ~bad
            q.add(path, lines[bad_a], "age", "age is not a whole number; leave it blank if unknown", list(ids[bad_a]))
            bad = bad | bad_a
        if "enrolled_on" in tab.column_names:
            _, bad_e = _dates(tab.column("enrolled_on"), n)
            bad_e = bad_e & ~bad
            q.add(path, lines[bad_e], "enrolled_on", "not a date (write YYYY-MM-DD, or leave it blank)",
                  list(ids[bad_e]))
            bad = bad | bad_e
        h = hash_ids(ids)
        hashes.append(h)
        ok_parts.append(~bad)
    ok = np.concatenate(ok_parts) if ok_parts else np.empty(0, dtype=bool)
    rows_n = len(ok)
    cand = np.flatnonzero(ok)
    hc = (np.concatenate(hashes) if hashes else np.empty(0, dtype=np.uint64))[cand]
    del hashes
    # repeated ids: the first accepted row wins (a stable sort keeps file order among equal hashes)
    order = np.argsort(hc, kind="stable")
    hs = hc[order]
    del hc
    first = np.ones(len(hs), dtype=bool)
    first[1:] = hs[1:] != hs[:-1]
    kept_rows = cand[order[first]]
    del order, cand
    keep = np.zeros(rows_n, dtype=bool)
    keep[kept_rows] = True
    dupes = ok & ~keep
    if dupes.any():
        line0 = 2 if path.suffix.lower() == ".csv" else 1
        q.add(path, np.flatnonzero(dupes) + line0, "member_id", "repeated member id; the first row is used")
    member_of_row = np.full(rows_n, -1, dtype=np.int64)
    member_of_row[keep] = np.arange(int(keep.sum()))
    return MemberIndex(hs[first], member_of_row[kept_rows]), keep, member_of_row


def _dates(arr, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(days since 1970, bad mask); blank = NaN, not bad."""
    if arr is None:
        return np.full(n, np.nan), np.zeros(n, dtype=bool)
    if pa.types.is_date(arr.type) or pa.types.is_timestamp(arr.type):
        v = pc.cast(pc.cast(arr, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False).astype(float)
        return v, np.zeros(n, dtype=bool)
    s = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    txt = np.asarray(pc.fill_null(s, "").to_numpy(zero_copy_only=False), dtype=object)
    blank = txt == ""
    parsed = pd.to_datetime(pd.Series(txt, dtype=object).where(~blank), errors="coerce", format="ISO8601")
    v = (parsed.dt.tz_localize(None) if getattr(parsed.dt, "tz", None) else parsed).to_numpy("datetime64[D]")
    days = v.astype("int64").astype(float)
    days[np.isnat(v)] = np.nan
    bad = np.isnan(days) & ~blank
    return days, bad


# ----------------------------------------------------------------------------- partitions


class Partitions:
    """Scratch files per block of members.

    Attributes: Arrow IPC, one file open at a time (accepted rows arrive in member order, so a partition's
    rows are contiguous). Transactions and events: fixed-width binary records (:data:`TX_DTYPE`,
    :data:`EV_DTYPE`) appended with ``ndarray.tofile``: an open file costs a handle and a small buffer, so
    thousands of partitions take no more memory than a few (an open Arrow IPC writer with compression holds
    about a megabyte: at 2.3M members that was most of the resident size).
    """

    def __init__(self, scratch: Path, n_members: int, block: int = BLOCK) -> None:
        self.dir = Path(scratch)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.block = block
        self.n = n_members
        self.count = max(1, -(-n_members // block))
        self._files: dict[tuple[str, int], Any] = {}
        self._ipc: tuple[int, Any] | None = None  # (partition, writer) of the attributes
        _enough_files(2 * self.count + 64)

    def base(self, p: int) -> int:
        return p * self.block

    def size(self, p: int) -> int:
        return min(self.block, self.n - p * self.block) if self.n else 0

    def path(self, kind: str, p: int) -> Path:
        return self.dir / f"{kind}-{p:05d}.{'arrow' if kind == 'attributes' else 'bin'}"

    def write(self, kind: str, m: np.ndarray, data) -> None:
        """Append rows to the partitions of their members ``m`` (global member index): a pa.Table of
        attributes (in member order), or a structured array of transactions or events."""
        if not len(m):
            return
        part = m // self.block
        if kind == "attributes":
            bounds = np.flatnonzero(np.diff(part)) + 1
            for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(part)]):
                p = int(part[a])
                if self._ipc is None or self._ipc[0] != p:
                    if self._ipc is not None:
                        self._ipc[1].close()
                    self._ipc = (p, pa.ipc.new_file(str(self.path(kind, p)), data.schema))
                self._ipc[1].write_table(data.slice(a, b - a))
            return
        order = np.argsort(part, kind="stable")
        rows = data[order]
        bounds = np.searchsorted(part[order], np.arange(self.count + 1))
        for p in np.flatnonzero(np.diff(bounds)):
            fh = self._files.get((kind, p))
            if fh is None:
                fh = self._files[(kind, p)] = open(self.path(kind, p), "ab")
            rows[bounds[p]:bounds[p + 1]].tofile(fh)

    def close(self, kind: str | None = None) -> None:
        """Finish the files of one kind (or all of them)."""
        if self._ipc is not None and kind in (None, "attributes"):
            self._ipc[1].close()
            self._ipc = None
        for key in [k for k in self._files if kind is None or k[0] == kind]:
            self._files.pop(key).close()

    def read(self, kind: str, p: int):
        """The attributes (pa.Table) or the transactions / events (structured array) of partition p."""
        path = self.path(kind, p)
        if kind == "attributes":
            if not path.exists():
                return pa.schema([("m", pa.int32())]).empty_table()
            with pa.memory_map(str(path)) as src:
                return pa.ipc.open_file(src).read_all()
        dtype = TX_DTYPE if kind == "transactions" else EV_DTYPE
        return np.fromfile(path, dtype=dtype) if path.exists() else np.empty(0, dtype=dtype)


def release_memory() -> None:
    """Give freed memory back to the operating system between partitions: Arrow's pool and glibc's heap keep it
    otherwise, and the resident size only ever grows. (glibc only; elsewhere a no-op.)"""
    pa.default_memory_pool().release_unused()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _enough_files(needed: int) -> None:
    """Transactions and events of every partition are written at once: raise the open-file limit if it is short."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < needed:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard) if hard != resource.RLIM_INFINITY
                                                        else needed, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not POSIX, or not allowed: try anyway
        pass


def spread_attributes(path: Path, keep: np.ndarray, member_of_row: np.ndarray, parts: Partitions) -> None:
    """Second pass over the attributes: accepted rows (all columns as text, plus line and member index)."""
    row = 0
    for lines, tab in iter_batches(path):
        n = tab.num_rows
        sel = keep[row:row + n]
        m = member_of_row[row:row + n][sel]
        cols = {"line": pa.array(lines[sel]), "m": pa.array(m.astype(np.int32))}
        mask = pa.array(sel)
        for name in tab.column_names:  # as text, in Arrow (no Python strings)
            cols[name] = pc.fill_null(pc.cast(tab.column(name).filter(mask), pa.string()), "")
        parts.write("attributes", m, pa.table(cols))
        row += n
        release_memory()
    parts.close("attributes")


@dataclass
class Activity:
    """What the activity files held: time range and counts, for the report."""

    rows: Counter = field(default_factory=Counter)
    first_t: int | None = None
    last_t: int | None = None
    unknown_products: int = 0
    other_events: Counter = field(default_factory=Counter)

    def seen(self, t: np.ndarray) -> None:
        if len(t):
            lo, hi = int(t.min()), int(t.max())
            self.first_t = lo if self.first_t is None else min(self.first_t, lo)
            self.last_t = hi if self.last_t is None else max(self.last_t, hi)


def _members(path: Path, tab: pa.Table, lines: np.ndarray, index: MemberIndex, q: Quarantine) -> np.ndarray:
    m = index.lookup(tab.column("member_id"))
    bad = m < 0
    if bad.any():
        ids = _text(tab.column("member_id").take(pa.array(np.flatnonzero(bad))), int(bad.sum()))
        q.add(path, lines[bad], "member_id",
              ["required value is missing" if not str(x).strip() else
               f"member id {str(x).strip()!r} is not in the attributes file (or its row was quarantined)" for x in ids],
              [str(x).strip() or None for x in ids])
    return m


def spread_activity(inputs: RawInputs, index: MemberIndex, product_index: dict[str, int], parts: Partitions,
                    q: Quarantine) -> Activity:
    """Transactions and events, checked, to the partitions of their members."""
    act = Activity()
    path = inputs.transactions
    cols = _check_columns(path, TX_REQUIRED)
    for lines, tab in iter_batches(path):
        n = tab.num_rows
        act.rows["transactions"] += n
        m = _members(path, tab, lines, index, q)
        t, bad_t = _times(tab.column("ts"), n)
        bad_t = bad_t & (m >= 0)
        q.add(path, lines[bad_t], "ts", "not an ISO 8601 date/time (e.g. 2026-11-03T14:05:09Z)")
        amount, bad_a = _numbers(tab.column("amount"), n)
        bad_a = (bad_a | ~np.isfinite(amount) | (amount < 0) | (amount > MAX_AMOUNT)) & (m >= 0) & ~bad_t
        q.add(path, lines[bad_a], "amount", f"amount must be a number from 0 to {MAX_AMOUNT:,.0f}")
        ok = (m >= 0) & ~bad_t & ~bad_a
        optional = {}
        for name, default in (("quantity", 1.0), ("discount", 0.0), ("points", np.nan), ("returned", 0.0)):
            v, bad_v = _numbers(tab.column(name) if name in cols else None, n, default)
            bad_v = (bad_v | (np.abs(np.nan_to_num(v)) > MAX_AMOUNT)) & ok
            q.add(path, lines[bad_v], name, f"{name} is not a number")
            ok = ok & ~bad_v
            optional[name] = v
        points = np.where(np.isnan(optional["points"]), np.floor(np.nan_to_num(amount)), optional["points"])
        item = _map_products(tab.column("product_id"), product_index)
        act.unknown_products += int(((item < 0) & ok).sum())
        okey = _order_keys(tab.column("order_id") if "order_id" in cols else None, m, t)
        act.seen(t[ok])
        sel = np.flatnonzero(ok)
        rec = np.empty(len(sel), dtype=TX_DTYPE)
        rec["m"], rec["t"], rec["item"], rec["amount"] = m[sel], t[sel], item[sel], amount[sel]
        rec["discount"] = optional["discount"][sel] > 0
        rec["points"] = points[sel]
        rec["returned"] = optional["returned"][sel] > 0
        rec["order"] = okey[sel]
        parts.write("transactions", m[sel], rec)
        release_memory()
    path = inputs.events
    cols = _check_columns(path, EV_REQUIRED)
    kinds = pa.array(EVENT_KINDS)
    for lines, tab in iter_batches(path):
        n = tab.num_rows
        act.rows["events"] += n
        m = _members(path, tab, lines, index, q)
        t, bad_t = _times(tab.column("ts"), n)
        bad_t = bad_t & (m >= 0)
        q.add(path, lines[bad_t], "ts", "not an ISO 8601 date/time (e.g. 2026-11-03T14:05:09Z)")
        ev = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(tab.column("event"), pa.string())))
        kind = np.asarray(pc.fill_null(pc.index_in(ev, value_set=kinds), -1).to_numpy(zero_copy_only=False),
                          dtype=np.int8)
        other = (kind < 0) & (m >= 0) & ~bad_t
        if other.any():
            names = _text(tab.column("event").take(pa.array(np.flatnonzero(other))), int(other.sum()))
            act.other_events.update(str(x) for x in names)
            q.add(path, lines[other], "event",
                  [f"unknown event {str(x)!r}: use email_open, email_click, browse or complaint" for x in names])
        ok = (m >= 0) & ~bad_t & (kind >= 0)
        item = _map_products(tab.column("product_id") if "product_id" in cols else None, product_index, n)
        act.seen(t[ok])
        sel = np.flatnonzero(ok)
        rec = np.empty(len(sel), dtype=EV_DTYPE)
        rec["m"], rec["t"], rec["kind"], rec["item"] = m[sel], t[sel], kind[sel], item[sel]
        parts.write("events", m[sel], rec)
        release_memory()
    return act


def _map_products(arr, product_index: dict[str, int], n: int = 0) -> np.ndarray:
    """Catalog index of each product id (-1: blank or not in the catalog), looked up in Arrow (no Python strings)."""
    if arr is None:
        return np.full(n, -1, dtype=np.int32)
    ids = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    catalog = pa.array(list(product_index), type=pa.string())
    pos = np.asarray(pc.fill_null(pc.index_in(ids, value_set=catalog), -1).to_numpy(zero_copy_only=False))
    values = np.asarray(list(product_index.values()), dtype=np.int32)
    return np.where(pos >= 0, values[np.maximum(pos, 0)], -1).astype(np.int32)


def _order_keys(arr, m: np.ndarray, t: np.ndarray) -> np.ndarray:
    """64-bit key of each row's order: its order_id (hashed once per distinct id); without one, the member's rows
    with the same time are one order."""
    fallback = (m.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ t.astype(np.uint64)
    if arr is None:
        return fallback
    enc = pc.dictionary_encode(pc.utf8_trim_whitespace(pc.cast(arr, pa.string())))
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    uniq = np.asarray(enc.dictionary.to_numpy(zero_copy_only=False), dtype=object)
    codes = enc.indices.to_numpy(zero_copy_only=False)
    if codes.dtype.kind == "f":
        codes = np.where(np.isnan(codes), -1, codes)
    codes = codes.astype(np.int64)
    h = np.asarray(hash_ids(uniq), dtype=np.uint64) if len(uniq) else np.zeros(1, dtype=np.uint64)
    blank = np.append(uniq == "", True) if len(uniq) else np.array([True])
    use = (codes >= 0) & ~blank[np.where(codes >= 0, codes, len(blank) - 1)]
    return np.where(use, h[np.maximum(codes, 0) % len(h)], fallback)


def epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days
