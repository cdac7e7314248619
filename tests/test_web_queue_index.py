"""The studio's queue aggregates: kept by the run's saves and the reviewers' decisions, equal to a rebuild.

Hypothesis drives random sequences of saves (new members, re-saved members
with other outcomes and findings) and decisions; after each sequence the
incrementally kept tables must equal what ``queue_index.rebuild`` computes from
members, findings and decisions, and every filter's count must equal the rows
its pages walk. On both backends: on PostgreSQL the members are written by two
shards of one run (even keys by shard 0, odd by shard 1) and the studio's view
covers both.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contentgen.store import SqliteStore, open_store
from contentgen.store import queue_index as QI
from contentgen.store.studio_db import StudioDB

RULES = {"brand.hype": "brand", "brand.caps": "brand", "facts.price": "facts", "compliance.creepy": "compliance",
         "schema.json": "schema"}
OUTCOMES = ("approved", "repaired", "fallback", "review", "rejected", "suppressed", "holdout")


def finding_st():
    return st.builds(lambda r, sev: {"rule_id": r, "gate": RULES[r], "severity": sev, "field": "body",
                                     "span": [0, 3], "excerpt": "abc", "message": "m"},
                     st.sampled_from(sorted(RULES)), st.sampled_from(("error", "warning", "info")))


def row_st(keys):
    return st.builds(
        lambda k, outcome, seg, tier, send, attempts, chan: {
            "member_key": k, "seq": int(k[1:]), "member_id": k, "outcome": outcome, "segment": seg, "tier": tier,
            "record": {"member_id": k, "outcome": outcome, "send": send, "channel": chan,
                       "message": ({"subject": f"s {k}"} if chan == "email" else {"title": f"t {k}"}
                                   if chan != "sms" else {"text": f"x {k}"}) if send else None},
            "attempts": [{"n": i, "kind": "generate", "findings": fs} for i, fs in enumerate(attempts)]},
        st.sampled_from(keys), st.sampled_from(OUTCOMES), st.sampled_from(("Enthusiasts", "Browsers")),
        st.integers(1, 3), st.booleans(), st.lists(st.lists(finding_st(), max_size=3), max_size=3),
        st.sampled_from(("email", "push", "sms")))


KEYS = [f"M{i:03d}" for i in range(12)]
op_st = st.one_of(
    st.tuples(st.just("save"), st.lists(row_st(KEYS), min_size=1, max_size=6)),
    st.tuples(st.just("decide"), st.sampled_from(KEYS), st.sampled_from(("approve", "reject", "edit")),
              st.booleans()),
)


def _stores(tmp_path_factory, backend):
    """(the store of each shard, the studio's connection over the run): one SQLite store, or two PostgreSQL
    shards of one run, emptied first."""
    if backend is None:
        s = SqliteStore(tmp_path_factory.mktemp("qi") / "run.db")
        return [s], s.studio_conn()
    for scope in ("shard-0-of-2", "shard-1-of-2"):
        open_store(backend, scope=scope).reset()
    stores = [open_store(backend, scope=scope) for scope in ("shard-0-of-2", "shard-1-of-2")]
    return stores, stores[0].studio_conn()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op_st, min_size=1, max_size=12))
def test_incremental_aggregates_equal_a_rebuild(tmp_path_factory, backend, ops):
    stores, c = _stores(tmp_path_factory, backend)
    sdb = StudioDB(c)
    try:
        saved: set[str] = set()
        for op in ops:
            if op[0] == "save":
                for i, store in enumerate(stores):  # a member belongs to one shard (by its number)
                    rows = [r for r in op[1] if int(r["member_key"][1:]) % len(stores) == i]
                    if rows:
                        store.save_members(rows)
                saved.update(r["member_key"] for r in op[1])
            else:
                _, key, action, override = op
                if key in saved:  # reviewers decide on members the run has written
                    ov = [{"rule_id": "facts.price", "reason": "the price is the catalog's"}] if override else None
                    sdb.add_decision(key, "rita", action, "a reason in words", "h", None, overrides=ov)
        incremental = QI.snapshot(c)
        with c.transaction():
            QI.rebuild(c)
        assert QI.snapshot(c) == incremental
        if backend is not None:  # the studio sees both shards' members
            assert {r[0] for r in incremental["queue"]} == saved
        # every filter's total equals the rows its keyset pages walk, forward and backward
        for flt in filters():
            n, exact = QI.count(c, flt)
            assert exact
            walked = walk(c, flt, 2)
            assert len(walked) == n == len(set(walked)), flt
            assert walk(c, flt, 2, backward=True) == walked
    finally:
        for store in stores:
            store.close()


def filters():
    for outcomes, rule, gate, sev, status in itertools.product(
            [QI.QUEUE_OUTCOMES, OUTCOMES], ["", "brand.hype"], ["", "brand", "facts"], ["", "error"],
            ["", "open", "decided"]):
        yield QI.Filter(outcomes=tuple(outcomes), rule=rule, gate=gate, severity=sev, status=status)
    for sort, order, rule in itertools.product(["seq", "errors", "member"], ["asc", "desc"], ["", "facts.price"]):
        yield QI.Filter(outcomes=OUTCOMES, sort=sort, order=order, rule=rule)
    yield QI.Filter(segment="Browsers", tier=2, outcomes=OUTCOMES)
    yield QI.Filter(q="M00", outcomes=OUTCOMES, rule="brand.hype")


def walk(db, flt, per_page, backward=False):
    n, _ = QI.count(db, flt)
    keys: list[str] = []
    if not backward:
        after = None
        while True:
            p = QI.page_keys(db, flt, limit=per_page, after=after, matches=n)
            keys += p.keys
            if not p.has_more:
                return keys
            after = p.last
    p = QI.page_keys(db, flt, limit=per_page, from_end=True, matches=n)
    keys = list(p.keys)
    while p.has_more:
        p = QI.page_keys(db, flt, limit=per_page, before=p.first, matches=n)
        keys = p.keys + keys
    return keys


def test_rebuild_backfills_an_old_store(tmp_path):
    """A run store written before m003 gets its aggregates from the migration's back-fill."""
    store = SqliteStore(tmp_path / "run.db")
    rows = [{"member_key": f"M{i}", "seq": i, "member_id": f"M{i}", "outcome": "review", "segment": "Browsers",
             "tier": 2, "record": {"send": False, "message": {"subject": "hi"}},
             "attempts": [{"n": 0, "kind": "generate", "findings": [
                 {"rule_id": "brand.hype", "gate": "brand", "severity": "error"}]}]} for i in range(5)]
    store.save_members(rows)
    before = QI.snapshot(store.db)
    store.db.execute("DELETE FROM migrations WHERE name = 'm005_studio_review'")
    for t in ("studio_queue", "studio_queue_rules", "studio_rules", "studio_counts", "studio_sessions",
              "studio_login_failures", "studio_member_rows"):
        store.db.execute(f"DROP TABLE {t}")
    for c in ("basis", "draft", "verdict", "findings", "overrides"):
        store.db.execute(f"ALTER TABLE decisions DROP COLUMN {c}")
    store.close()
    store = SqliteStore(tmp_path / "run.db")
    try:
        assert QI.snapshot(store.db) == before
        assert QI.count(store.db, QI.Filter(rule="brand.hype", severity="error")) == (5, True)
    finally:
        store.close()


def test_postgres_backfills_the_studio_tables_of_a_store_written_before_them(pg_url):
    """A PostgreSQL store written before p003_studio gets its queue aggregates from the migration's back-fill,
    every shard's, equal to what the run's saves and decisions keep."""
    stores = [open_store(pg_url, scope=f"shard-{i}-of-2") for i in range(2)]
    for i, store in enumerate(stores):
        store.save_members([{"member_key": f"M{j}", "seq": j, "member_id": f"M{j}", "outcome": "review",
                             "segment": "Browsers", "tier": 2, "record": {"send": True, "channel": "email",
                                                                          "message": {"subject": "hi"}},
                             "attempts": [{"n": 0, "kind": "generate", "findings": [
                                 {"rule_id": "brand.hype", "gate": "brand", "severity": "error"}]}]}
                            for j in range(i, 8, 2)])
    StudioDB(stores[0].studio_conn()).add_decision("M3", "rita", "reject", "not on brand at all", "h")
    before = QI.snapshot(stores[0].studio_conn())
    with stores[0].db.transaction():
        stores[0].db.execute("DELETE FROM migrations WHERE name = 'p003_studio'")
        for t in ("studio_queue", "studio_queue_rules", "studio_rules", "studio_counts", "studio_sessions",
                  "studio_login_failures", "studio_member_rows", "studio_variants", "studio_comparisons",
                  "studio_previews"):
            stores[0].db.execute(f"DROP TABLE {t}")
        stores[0].db.execute("DROP INDEX studio_members_updated")
    for s in stores:
        s.close()
    store = open_store(pg_url, scope="shard-1-of-2")
    try:
        c = store.studio_conn()
        assert QI.snapshot(c) == before
        assert QI.count(c, QI.Filter(rule="brand.hype", severity="error")) == (8, True)
        assert QI.count(c, QI.Filter(status="decided")) == (1, True)
    finally:
        store.close()
