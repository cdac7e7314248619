"""The files ``contentgen run`` reads: members (CSV or Parquet) and recommendations (JSONL), same order.

Written partition by partition to temporary files, renamed into place only when
the whole score succeeded (a failed score never leaves half a members file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ..models import SEGMENTS

__all__ = ["OutputWriter"]

COLUMNS = ("member_id", "first_name", "email", "segment", "churn_risk", "opt_in_tier", "locale", "status", "age",
           "stated_preferences", "timezone", "last_engaged_hour", "channels", "preferred_channel")


class OutputWriter:
    def __init__(self, out: Path, fmt: str = "csv") -> None:
        if fmt not in ("csv", "parquet"):
            raise ValueError("fmt must be csv or parquet")
        self.fmt = fmt
        self.members_path = Path(out) / f"members.{fmt}"
        self.recs_path = Path(out) / "recommendations.jsonl"
        self._m_tmp = self.members_path.with_name(self.members_path.name + ".tmp")
        self._r_tmp = self.recs_path.with_name(self.recs_path.name + ".tmp")
        self._recs = open(self._r_tmp, "w", encoding="utf-8", newline="\n")
        self._members = open(self._m_tmp, "w", encoding="utf-8", newline="") if fmt == "csv" else None
        self._pq = None
        self._first = True

    def write_members(self, attrs: dict[str, np.ndarray], seg: np.ndarray, risk: np.ndarray,
                      hour: np.ndarray) -> None:
        n = len(seg)

        def col(name: str) -> np.ndarray:
            return attrs.get(name, np.full(n, "", dtype=object))

        age = attrs["_age"]
        frame = pd.DataFrame({
            "member_id": col("member_id"), "first_name": col("first_name"), "email": col("email"),
            "segment": np.array(SEGMENTS, dtype=object)[seg], "churn_risk": risk,
            "opt_in_tier": attrs["_tier"], "locale": col("locale"), "status": col("status"),
            "age": pd.arrays.IntegerArray(np.nan_to_num(age).astype(np.int64), np.isnan(age)),
            "stated_preferences": col("stated_preferences"), "timezone": col("timezone"),
            "last_engaged_hour": pd.arrays.IntegerArray(np.maximum(hour, 0).astype(np.int64), hour < 0),
            "channels": col("channels"), "preferred_channel": col("preferred_channel"),
        }, columns=list(COLUMNS))
        if self.fmt == "csv":
            frame.to_csv(self._members, header=self._first, index=False, lineterminator="\n")
        else:
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._pq is None:
                self._pq = pq.ParquetWriter(str(self._m_tmp), table.schema, compression="zstd")
            self._pq.write_table(table)
        self._first = False

    def write_recs(self, lines: list[str]) -> None:
        """JSONL lines (without their newline), in the members file's order."""
        if lines:
            self._recs.write("\n".join(lines) + "\n")

    def close(self) -> None:
        if self._members is not None:
            self._members.close()
        if self._pq is not None:
            self._pq.close()
        elif self.fmt == "parquet":  # no rows at all
            self._m_tmp.write_bytes(b"")
        self._recs.close()
        self._m_tmp.replace(self.members_path)
        self._r_tmp.replace(self.recs_path)

    def abort(self) -> None:
        for fh in (self._members, self._recs):
            if fh is not None and not fh.closed:
                fh.close()
        if self._pq is not None:
            self._pq.close()
        for p in (self._m_tmp, self._r_tmp):
            p.unlink(missing_ok=True)
