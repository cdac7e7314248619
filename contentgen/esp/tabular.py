"""Flat files for any ESP or warehouse: one row per member sent a message, every common field.

``messages.csv`` (RFC 4180, UTF-8, header) and ``messages.parquet`` (typed: ``tier`` int32,
``send_at_utc`` timestamp UTC; written in row groups, never the whole run in memory).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from typing import Any

from .files import CsvFile, Export, OutFile
from .rows import COMMON_FIELDS, EspRow

DOCS = {"rfc4180": "https://www.rfc-editor.org/rfc/rfc4180", "parquet": "https://parquet.apache.org/docs/"}
ROW_GROUP = 10_000


def write_csv(exp: Export, rows: Callable[[], Iterable[EspRow]], *, with_email: bool, **_: Any) -> None:
    cols = [c for c in COMMON_FIELDS if with_email or c != "email"]
    f = exp.add(CsvFile(exp.folder, "messages.csv", cols, what="one row per member sent a message",
                        doc=DOCS["rfc4180"]))
    for row in rows():
        f.row(row.common())


def write_parquet(exp: Export, rows: Callable[[], Iterable[EspRow]], *, with_email: bool, **_: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = [c for c in COMMON_FIELDS if with_email or c != "email"]
    types = {"tier": pa.int32(), "send_at_utc": pa.timestamp("us", tz="UTC")}
    schema = pa.schema([pa.field(c, types.get(c, pa.string()), nullable=c == "send_at_utc") for c in cols])
    f = exp.add(OutFile(exp.folder, "messages.parquet", what="one row per member sent a message (typed columns)",
                        doc=DOCS["parquet"], columns=cols))
    f._fh.close()  # pyarrow writes the file itself; the checksum is taken after
    writer = pq.ParquetWriter(f._tmp, schema, compression="zstd")
    buf: dict[str, list[Any]] = {c: [] for c in cols}

    def flush() -> None:
        if buf[cols[0]]:
            writer.write_table(pa.table(buf, schema=schema))
            for v in buf.values():
                v.clear()

    try:
        for row in rows():
            d = row.common()
            d["send_at_utc"] = row.send_at
            for c in cols:
                buf[c].append(d[c])
            f.records += 1
            if len(buf[cols[0]]) >= ROW_GROUP:
                flush()
        flush()
    finally:
        writer.close()
    h = hashlib.sha256()
    with open(f._tmp, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    f._sha = h
    f._bytes = os.path.getsize(f._tmp)
    f._fh = open(f._tmp, "ab")  # commit() fsyncs and renames it
