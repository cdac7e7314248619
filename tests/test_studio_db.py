"""Every ``StudioDB`` method on both backends, directly (the web tests reach most of them through pages; the
preview's variants and comparisons, the member index and the purges are here on PostgreSQL too)."""

from __future__ import annotations

import pytest

from contentgen.store import open_store
from contentgen.store.studio_db import StudioDB


@pytest.fixture
def sdb(tmp_path, store_url):
    """A StudioDB over a store with three members in review, on each backend (PostgreSQL: shard 1 of 2 holds
    M1, shard 0 holds M0 and M2; the studio is opened on shard 0)."""
    url = store_url or f"sqlite:///{tmp_path / 'run.db'}"
    stores = [open_store(url, scope="shard-0-of-2" if store_url else "")]
    if store_url:
        stores.append(open_store(url, scope="shard-1-of-2"))
    for i in range(3):
        store = stores[1] if store_url and i == 1 else stores[0]
        store.save_members([{"member_key": f"M{i}", "seq": i, "member_id": f"M{i}", "outcome": "review",
                             "segment": "Browsers", "tier": 1,
                             "record": {"send": False, "channel": "email", "message": {"subject": f"s{i}"}},
                             "attempts": [{"n": 0, "kind": "generate", "prompt": "p", "response": "{}", "findings": [
                                 {"rule_id": "brand.hype", "gate": "brand", "severity": "error"}]}]}])
    stores[0].set_meta("campaign_id", "c1")
    yield StudioDB(stores[0].studio_conn())
    for s in stores:
        s.close()


def test_trail_decisions_and_audit(sdb):
    assert sdb.meta("campaign_id") == "c1" and sdb.meta("nope") is None
    assert sdb.member("NOPE") is None
    m = sdb.member("M1")  # on PostgreSQL a member of the other shard
    assert m["record"]["message"]["subject"] == "s1" and [a["n"] for a in m["attempts"]] == [0]
    d1 = sdb.add_decision("M1", "rita", "edit", "re-checked: fail", "h1", {"subject": "x"}, basis="attempt:0",
                          draft={"subject": "x"}, verdict="fail", findings=[{"rule_id": "brand.hype"}])
    d2 = sdb.add_decision("M1", "rita", "approve", "reads well now", "h2", {"subject": "y"},
                          overrides=[{"rule_id": "brand.hype", "reason": "the claim is true"}])
    d3 = sdb.add_decision("M2", "olga", "reject", "not for this member", "h3")
    assert d1 < d2 < d3
    assert sdb.decision(d2)["overrides"] == [{"rule_id": "brand.hype", "reason": "the claim is true"}]
    assert [d["action"] for d in sdb.decisions_for("M1")] == ["edit", "approve"]
    assert sdb.decision_counts() == {"edit": 1, "approve": 1, "reject": 1} and sdb.decision_total() == 3
    page = sdb.audit_page(2)
    assert [r["id"] for r in page] == [d3, d2] and page[0]["member_id"] == "M2" and page[1]["subject"] == "y"
    assert [r["id"] for r in sdb.audit_page(5, before_id=d2)] == [d1]
    assert [r["id"] for r in sdb.audit_page(5, member="M2")] == [d3]
    assert [r["id"] for r in sdb.audit_chunk(d1, 10)] == [d2, d3]
    assert sdb.counts() == {"review": 3}
    assert sdb.top_rules() == [("brand.hype", "brand", 3)]
    assert [d["action"] for d in sdb.iter_decisions()] == ["edit", "approve", "reject"]
    assert sdb.queued_member_ids() == {"M0", "M1", "M2"}
    if sdb.c.pg:  # a decision goes to its member's shard: no member, no shard
        with pytest.raises(KeyError):
            sdb.add_decision("NOPE", "rita", "reject", "no such member here", "h")


def test_sessions_flash_and_sign_in_failures(sdb):
    sdb.session_create("t1", "ada", "c1", "fp", client="127.0.0.1", user_agent="ua")
    sdb.session_create("t2", "rita", "c2", "fp")
    assert sdb.session("t1")["username"] == "ada" and sdb.session("zz") is None
    sdb.session_touch("t1", 1e10)
    assert sdb.session("t1")["last_seen"] == 1e10
    assert sdb.flash_pop("t1") is None
    sdb.flash_set("t1", {"kind": "ok", "text": "saved"})
    assert sdb.flash_pop("t1") == {"kind": "ok", "text": "saved"} and sdb.flash_pop("t1") is None
    assert [s["username"] for s in sdb.sessions()] == ["ada", "rita"]
    sdb.session_revoke("t2", "signed out")
    assert sdb.sessions_revoke("admin", "ada") == 1 and sdb.sessions_revoke("admin") == 0
    assert sdb.sessions() == [] and len(sdb.sessions(live_only=False)) == 2
    assert sdb.sessions_purge(2e10) == 2
    now = 1000.0
    for k in range(3):
        locked = sdb.login_failed("user:ada", now + k, limit=3, window=60, lock_for=900)
    assert locked == now + 2 + 900
    assert sdb.login_locked_until(["user:ada", "ip:x"], now + 10) == locked
    assert sdb.login_locked_until(["ip:x"], now + 10) is None
    sdb.login_succeeded(["user:ada"])
    assert sdb.login_locked_until(["user:ada"], now + 10) is None
    sdb.login_failed("ip:x", now, limit=3, window=60, lock_for=900)
    sdb.login_failures_purge(now + 1)
    assert sdb.login_failed("ip:x", now + 2, limit=2, window=60, lock_for=900) is None  # counting anew


def test_member_index_variants_and_comparisons(sdb):
    assert sdb.member_index_state() is None
    sdb.member_index_add([("M0", '{"a": 1}'), ("M1", '{"a": 2}')])
    sdb.member_index_add([("M1", '{"a": 3}')])
    sdb.member_index_done("fp1")
    assert sdb.member_index_state() == "fp1" and sdb.member_index_get("M1") == '{"a": 3}'
    sdb.member_index_reset()
    assert sdb.member_index_state() is None and sdb.member_index_get("M1") is None
    sdb.variant_add("v1", "base", None, {"message.j2": "x"}, "ada")
    sdb.variant_add("v1", "again", None, {"message.j2": "x"}, "ada")  # the same content: kept once
    sdb.variant_add("v2", "warm", "v1", {"message.j2": "y %s {% raw %}"}, "ada")
    assert sdb.variant_count() == 2 and sdb.variant("v2")["files"] == {"message.j2": "y %s {% raw %}"}
    assert [v["name"] for v in sdb.variants()] == ["base", "warm"] and sdb.variant("nope") is None
    cells = [("v1", "M0", {"outcome": "approved", "usage": {"prompt_tokens": 10, "completion_tokens": 5},
                           "cost_usd": 0.5}),
             ("v2", "M0", {"outcome": "fallback", "usage": {"prompt_tokens": 7, "completion_tokens": 1},
                           "cost_usd": 0.25})]
    c1 = sdb.comparison_add("first", "ada", ["v1", "v2"], ["M0"], cells)
    c2 = sdb.comparison_add("second", "ada", ["v1"], ["M0"], cells[:1])
    assert c2 > c1
    c = sdb.comparison(c1)
    assert c["label"] == "first" and c["cells"][("v2", "M0")]["outcome"] == "fallback"
    assert sdb.comparison(999999) is None
    assert [x["id"] for x in sdb.comparisons()] == [c2, c1]
    n, pt, ct, cost = sdb.preview_totals()
    assert (n, pt, ct) == (3, 27, 11) and cost == pytest.approx(1.25)
