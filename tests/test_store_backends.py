"""The same RunStore suite against both backends: SQLite (a file) and PostgreSQL (a database on loopback)."""

from __future__ import annotations

import json

import pytest

from contentgen.errors import StoreError
from contentgen.store import open_run_store, open_store


@pytest.fixture
def url(tmp_path, store_url):
    return store_url or f"sqlite:///{tmp_path / 'run.db'}"


def _member(key: str, seq: int, outcome: str = "approved", rule: str | None = None) -> dict:
    findings = [{"rule_id": rule, "gate": "brand", "severity": "error", "field": "body", "span": [3, 9],
                 "excerpt": "no rush", "message": "banned"}] if rule else []
    return {"member_key": key, "seq": seq, "member_id": key.upper(), "outcome": outcome, "segment": "s", "tier": 1,
            "record": {"member_key": key, "outcome": outcome, "text": "Grüße 👋"},
            "attempts": [{"n": 1, "kind": "generate", "prompt": "p", "response": json.dumps({"body": "b"}),
                          "findings": findings, "prompt_tokens": 10, "completion_tokens": 5},
                         {"n": 2, "kind": "fallback", "findings": []}]}


def test_migrations_are_applied_once_and_recorded(url):
    a = open_store(url)
    a.set_meta("k", "v")
    a.close()
    b = open_store(url)  # a second opening applies nothing again and keeps the data
    assert b.get_meta("k") == "v"
    names = [r[0] for r in b.db.execute("SELECT name FROM migrations ORDER BY name").fetchall()]
    from contentgen.store.migrations import MIGRATIONS
    from contentgen.store.migrations.postgres import MIGRATIONS as PG_MIGRATIONS

    every = PG_MIGRATIONS if url.startswith("postgresql") else MIGRATIONS
    assert names == sorted(n for n, _ in every)  # every table, the studio's included (m005 / p003), once each
    b.close()


def test_members_attempts_findings_and_quarantine(url):
    s = open_store(url)
    try:
        s.save_members([_member("b", 2, rule="brand.banned-words"), _member("a", 1, "fallback")],
                       quarantine=[{"file": "m.csv", "line": 3, "field": "email", "reason": "bad"}])
        s.save_members([_member("b", 2, "repaired")])  # a re-saved member replaces its attempts and findings
        s.add_quarantine([{"file": "m.csv", "line": 3, "field": "email", "reason": "again"}])  # one per place
        assert s.done_keys(["a", "b", "c"]) == {"a", "b"} and s.done_keys([]) == set()
        assert [r["member_key"] for r in s.iter_records()] == ["a", "b"]  # in input order
        assert next(iter(s.iter_records()))["text"] == "Grüße 👋"
        assert s.counts() == {"fallback": 1, "repaired": 1} and s.member_count() == 2
        assert s.top_rules() == []  # b's finding went with its old attempt
        s.save_members([_member("c", 3, rule="brand.banned-words")])
        assert s.top_rules() == [("brand.banned-words", "brand", 1)]
        assert [q["reason"] for q in s.iter_quarantine()] == ["bad"]
        assert s.last_model_attempt("c") == (json.dumps({"body": "b"}), json.dumps(
            _member("c", 3, rule="brand.banned-words")["attempts"][0]["findings"], ensure_ascii=False))
        assert s.last_model_attempt("zz") is None
        assert s.latest_decisions() == {} and list(s.iter_decisions()) == []
    finally:
        s.close()


def test_cache_and_ledger(url):
    s = open_store(url)
    try:
        assert s.cache_get("k") is None
        s.record_answer("k", {"text": "hello", "finish_reason": "stop", "prompt_tokens": 7}, {"prompt_tokens": 7,
                        "completion_tokens": 3, "cached_tokens": 1}, 0.25, cache=True)
        s.record_answer("k2", {"text": "x"}, {"prompt_tokens": 1}, 0.5, cache=False)  # paid, not reusable
        assert s.cache_get("k") == {"text": "hello", "finish_reason": "stop", "prompt_tokens": 7,
                                    "completion_tokens": 0}
        assert s.cache_get("k2") is None
        t = s.ledger_totals()
        assert t == {"processes": 1, "requests": 2, "prompt_tokens": 8, "completion_tokens": 3, "cached_tokens": 1,
                     "cost_usd": 0.75}
    finally:
        s.close()
    s = open_store(url)  # another process's answers add up
    try:
        s.record_answer("k3", {"text": "y"}, {"prompt_tokens": 2}, 0.0, cache=True)
        assert s.ledger_totals()["processes"] == 2 and s.ledger_totals()["requests"] == 3
    finally:
        s.close()


def test_batch_ledger(url):
    s = open_store(url)
    try:
        s.batch_add_file("r1.jsonl", [("a", 10), ("b", 20), ("c", 5)])
        assert s.batch_has("a") and not s.batch_has("zz") and s.batch_file_count() == 1
        s.batch_set_file("r1.jsonl", file_id="file-1", status="uploaded")
        assert s.batch_files("uploaded")[0] == {"file": "r1.jsonl", "requests": 3, "tokens": 35, "round": 0,
                                                "file_id": "file-1", "batch_id": None, "status": "uploaded",
                                                "joined": 0}
        assert s.batch_files("written") == []
        s.batch_mark_answered(["a"])
        s.batch_record_failures("r1.jsonl", "batch-1", [("b", "batch_expired", "expired", True)])
        s.batch_record_failures("r1.jsonl", "batch-2", [("b", "server_error", "boom", False)])
        failed = s.batch_failed()
        assert [(f["key"], f["tries"], f["code"], bool(f["retryable"])) for f in failed] == [
            ("b", 2, "server_error", False)]
        assert sorted(s.batch_file_items("r1.jsonl")) == [("a", 10, 0), ("b", 20, 2), ("c", 5, 0)]
        assert s.batch_file_items("r1.jsonl", "queued") == [("c", 5, 0)]
        s.batch_reset_tries()
        assert s.batch_failed()[0]["tries"] == 0
        s.batch_add_file("r2.jsonl", [("b", 20)], round_=1)  # resubmitted: the request moves to the new file
        assert s.batch_item_file("b") == "r2.jsonl"
        summary = s.batch_summary()
        assert summary == {"files": 2, "requests": 3, "answered": 1, "failed": 0, "errors": 2,
                           "failure_codes": {"batch_expired": 1, "server_error": 1}}
    finally:
        s.close()


def test_a_run_folder_remembers_its_store(tmp_path, store_url):
    out = tmp_path / "out"
    s = open_run_store(out, store_url, scope="shard-0-of-2")
    s.set_meta("state", "complete")
    s.close()
    s = open_run_store(out)  # no URL: the folder's own store
    assert s.get_meta("state") == "complete"
    s.close()
    assert (out / ("store.json" if store_url else "run.db")).exists()
    if store_url:
        assert "password" not in (out / "store.json").read_text()
        with pytest.raises(StoreError, match="this run folder's store is"):
            open_run_store(out, store_url, scope="shard-1-of-2")  # the same folder as another shard: refused


def test_postgres_shards_share_the_cache_not_their_rows(pg_url):
    a, b = open_store(pg_url, scope="shard-0-of-2"), open_store(pg_url, scope="shard-1-of-2")
    try:
        a.set_meta("state", "running")
        a.save_members([_member("a", 1)])
        a.record_answer("k", {"text": "t"}, {"prompt_tokens": 1}, 0.1, cache=True)
        assert b.get_meta("state") is None and b.done_keys(["a"]) == set() and b.member_count() == 0
        assert b.cache_get("k") == a.cache_get("k") != None  # noqa: E711 - paid once, reused by every shard
        assert b.ledger_totals()["requests"] == 0
        a.reset()  # --restart of one shard leaves the other's rows
        b.save_members([_member("b", 2)])
        a = open_store(pg_url, scope="shard-0-of-2")
        assert a.member_count() == 0 and b.member_count() == 1 and a.cache_get("k") is not None
    finally:
        a.close()
        b.close()


def test_an_unreachable_postgres_is_a_clear_error(tmp_path):
    pytest.importorskip("psycopg")
    with pytest.raises(StoreError) as e:
        open_store("postgresql://nobody:secret@127.0.0.1:1/none")
    assert "cannot open the PostgreSQL run store" in str(e.value) and "secret" not in str(e.value)
    assert "PGPASSWORD" in (e.value.hint or "")


def test_the_studio_opens_a_postgresql_run_folder(tmp_path, pg_url):
    """`contentgen serve` on a PostgreSQL run folder: the studio opens the store its store.json names (the
    URL there has no password), one connection per thread, with the studio's tables migrated (p003_studio)."""
    import threading

    from contentgen.web.app import Studio, StudioConfig

    out = tmp_path / "out"
    s = open_run_store(out, pg_url, scope="shard-1-of-2")
    s.set_meta("campaign_id", "pg-campaign")
    s.close()
    studio = Studio(StudioConfig(run_dir=out))
    try:
        assert studio.campaign_id == "pg-campaign"
        assert studio.db.pg and studio.db.scopes == ("shard-0-of-2", "shard-1-of-2")
        other: list = []
        t = threading.Thread(target=lambda: other.append(studio.store))
        t.start()
        t.join()
        assert other[0] is not studio.store and other[0].db is not studio.store.db
        assert "p003_studio" in {r[0] for r in studio.db.execute("SELECT name FROM migrations")}
        # a connection the server drops (restart, failover) is replaced on this thread's next request
        import psycopg

        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (studio.store.db.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError):
            studio.sdb.meta("campaign_id")
        assert studio.sdb.meta("campaign_id") == "pg-campaign"
    finally:
        studio.close()
    with pytest.raises(StoreError, match="no run store here"):
        Studio(StudioConfig(run_dir=tmp_path))
