"""Hostile raw rows (Hypothesis): every row is either used or quarantined with its own line, never a crash."""

from __future__ import annotations

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contentgen.score.raw import Partitions, Quarantine, RawInputs, read_attributes, spread_activity, spread_attributes

KNOWN = ["M1", "M2", "M3"]
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=12)
TS_OK = st.builds(lambda d, s, form: [f"{d.isoformat()}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}Z",
                                      f"{d.isoformat()} {s // 3600:02d}:{s // 60 % 60:02d}:00",
                                      f"{d.isoformat()}T{s // 3600:02d}:00:00+02:00",
                                      d.isoformat()][form],
                  st.dates(dt.date(2024, 1, 1), dt.date(2026, 11, 1)), st.integers(0, 86_399), st.integers(0, 3))
TS_BAD = st.text(alphabet="abcxyz -:/", min_size=1, max_size=10)
AMOUNT = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-50, 500).map(str),
                   TEXT, st.just(""))
MEMBER = st.one_of(st.sampled_from(KNOWN), st.sampled_from(["M9", "", " M1 ", "m1"]), TEXT)


def expected_ok(member: str, ts: str, amount: str) -> bool:
    if member.strip() not in KNOWN:
        return False
    if pd.isna(pd.to_datetime(ts, utc=True, errors="coerce", format="ISO8601")):
        return False
    try:
        v = float(amount.strip().lower().replace("true", "1").replace("false", "0"))
    except ValueError:
        return False
    return math.isfinite(v) and 0 <= v <= 10_000_000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(MEMBER, st.one_of(TS_OK, TS_BAD), AMOUNT), min_size=1, max_size=25))
def test_every_transaction_row_is_used_or_quarantined_with_its_line(tmp_path_factory, rows):
    root = tmp_path_factory.mktemp("raw")
    (root / "attributes.csv").write_text("member_id,opt_in_tier\n" + "".join(f"{m},2\n" for m in KNOWN))
    with open(root / "transactions.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["member_id", "ts", "product_id", "amount"])
        for m, ts, amount in rows:
            w.writerow([m, ts, "P1", amount])
    (root / "events.csv").write_text("member_id,ts,event\n")
    q = Quarantine()
    index, keep, member_of_row = read_attributes(root / "attributes.csv", q)
    parts = Partitions(root / "parts", index.n)
    spread_attributes(root / "attributes.csv", keep, member_of_row, parts)
    spread_activity(RawInputs(root / "attributes.csv", root / "transactions.csv", root / "events.csv"), index,
                    {"P1": 0}, parts, q)
    parts.close()
    used = len(parts.read("transactions", 0))
    want = [expected_ok(*r) for r in rows]
    assert used == sum(want)
    bad_lines = sorted({r["line"] for r in q.records if r["file"].endswith("transactions.csv")})
    assert bad_lines == [i + 2 for i, ok in enumerate(want) if not ok]
    assert q.total == len(rows) - sum(want)


def test_timestamps_in_every_accepted_form(tmp_path):
    root = tmp_path
    (root / "attributes.csv").write_text("member_id,opt_in_tier\nM1,3\n")
    forms = ["2026-03-01T10:00:00Z", "2026-03-01T12:00:00+02:00", "2026-03-01 10:00:00", "2026-03-01T10:00:00.250Z"]
    (root / "transactions.csv").write_text("member_id,ts,product_id,amount\n"
                                           + "".join(f"M1,{t},P1,1\n" for t in forms))
    (root / "events.csv").write_text("member_id,ts,event\nM1,2026-03-01,email_open\n")
    q = Quarantine()
    index, keep, mor = read_attributes(root / "attributes.csv", q)
    parts = Partitions(root / "p", index.n)
    spread_attributes(root / "attributes.csv", keep, mor, parts)
    act = spread_activity(RawInputs(root / "attributes.csv", root / "transactions.csv", root / "events.csv"), index,
                          {"P1": 0}, parts, q)
    parts.close()
    t = parts.read("transactions", 0)["t"]
    assert q.total == 0 and set(np.unique(t // 1)) == {int(dt.datetime(2026, 3, 1, 10, tzinfo=dt.timezone.utc)
                                                          .timestamp())}
    assert act.first_t == int(dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc).timestamp())


def test_attribute_problems_name_line_and_field(tmp_path):
    p = Path(tmp_path / "attributes.csv")
    p.write_text("member_id,opt_in_tier,age,enrolled_on\nM1,2,40,2025-01-01\n,2,30,\nM2,5,30,\nM3,1,old,\n"
                 "M4,1,20,someday\nM1,3,50,\nM5,3,,\n")
    q = Quarantine()
    index, keep, _ = read_attributes(p, q)
    got = sorted((r["line"], r["field"]) for r in q.records)
    assert got == [(3, "member_id"), (4, "opt_in_tier"), (5, "age"), (6, "enrolled_on"), (7, "member_id")]
    assert index.n == 2 and keep.tolist() == [True, False, False, False, False, False, True]
