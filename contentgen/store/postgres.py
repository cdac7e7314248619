"""The run store in PostgreSQL (psycopg 3): the same ``RunStore`` methods as ``SqliteStore``.

Every shard of a run opens the same database with its own scope (``shard-i-of-n``): its rows are its own,
the answer cache is shared. Each ``save_members`` call is one transaction (a member's record, attempts and
findings land together or not at all), so a killed shard resumes exactly like a SQLite run.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from .. import failpoints
from ..errors import StoreError
from . import queue_index
from .dialect import PgConn, run_scopes
from .migrations.postgres import MIGRATIONS, SCOPED_TABLES

_HINT = ("check the PostgreSQL server is up and the URL (user, host, port, database) is right; the password comes "
         "from PGPASSWORD or ~/.pgpass; then re-run the same command to resume")
_LOCK_ID = 0x636F6E74  # advisory lock for migrations ("cont")


def _redact(url: str) -> str:
    from . import redact

    return redact(url)


class PostgresStore:
    def __init__(self, url: str, *, scope: str = ""):
        try:
            import psycopg
        except ImportError:
            raise StoreError("a postgresql:// store needs psycopg 3", file=_redact(url),
                             hint="pip install 'psycopg[binary]>=3.1' (scripts/setup.sh installs it)") from None
        self._psycopg = psycopg
        self.url = _redact(url)
        self._dsn = url.replace("postgres://", "postgresql://", 1)  # with the password, never shown
        self.scope = scope
        self.process = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"
        try:
            self.db = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
            self._migrate()
        except psycopg.OperationalError as e:
            raise StoreError(f"cannot open the PostgreSQL run store ({str(e).strip().splitlines()[0]})",
                             file=self.url, hint=_HINT) from None

    def _migrate(self) -> None:
        with self.db.transaction(), self.db.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            cur.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION)")
            cur.execute("SELECT name FROM migrations")
            done = {r[0] for r in cur.fetchall()}
            for name, fn in MIGRATIONS:
                if name not in done:
                    fn(cur)
                    cur.execute("INSERT INTO migrations VALUES (%s, %s)", (name, time.time()))

    def _one(self, sql: str, params: Iterable[Any] = ()) -> tuple | None:
        return self.db.execute(sql, tuple(params)).fetchone()

    def _write_error(self, e: Exception) -> StoreError:
        return StoreError(f"cannot write the run store: {str(e).strip().splitlines()[0] if str(e).strip() else e}",
                          file=self.url, hint=_HINT)

    # -- meta
    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE scope=%s AND key=%s", (self.scope, key))
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta VALUES (%s, %s, %s) ON CONFLICT (scope, key) DO UPDATE SET "
                        "value=EXCLUDED.value", (self.scope, key, value))

    # -- members
    def done_keys(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        if not keys:
            return set()
        cur = self.db.execute("SELECT member_key FROM members WHERE scope=%s AND member_key = ANY(%s)",
                              (self.scope, keys))
        return {r[0] for r in cur}

    def save_members(self, rows: list[dict[str, Any]], quarantine: Iterable[dict[str, Any]] = ()) -> None:
        """One transaction per batch: a member's record, attempts and findings (and the quarantine records of its
        rows) land together or not at all."""
        now = time.time()
        s = self.scope
        # a member saved twice in one batch keeps its last row, as in SqliteStore
        rows = list({r["member_key"]: r for r in rows}.values())
        members, attempts, findings = [], [], []
        for r in rows:
            key = r["member_key"]
            members.append((s, key, r["seq"], r.get("member_id"), "decided", r["outcome"], r.get("segment"),
                            r.get("tier"), json.dumps(r["record"], ensure_ascii=False), now))
            for a in r.get("attempts", []):
                attempts.append((s, key, a["n"], a["kind"], a.get("prompt"), a.get("response"),
                                 json.dumps(a.get("findings", []), ensure_ascii=False), a.get("prompt_tokens", 0),
                                 a.get("completion_tokens", 0), int(a.get("cached", False))))
                for f in a.get("findings", []):
                    span = f.get("span") or (None, None)
                    findings.append((s, key, a["n"], f["rule_id"], f["gate"], f["severity"], f.get("field"),
                                     span[0], span[1], f.get("excerpt"), f.get("message")))
        keys = [m[1] for m in members]
        try:
            with self.db.transaction(), self.db.cursor() as cur:
                self._add_quarantine(cur, quarantine)
                cur.execute("DELETE FROM attempts WHERE scope=%s AND member_key = ANY(%s)", (s, keys))
                cur.execute("DELETE FROM findings WHERE scope=%s AND member_key = ANY(%s)", (s, keys))
                cur.executemany(
                    "INSERT INTO members VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (scope, member_key) DO "
                    "UPDATE SET seq=EXCLUDED.seq, member_id=EXCLUDED.member_id, state=EXCLUDED.state, "
                    "outcome=EXCLUDED.outcome, segment=EXCLUDED.segment, tier=EXCLUDED.tier, "
                    "record=EXCLUDED.record, updated_at=EXCLUDED.updated_at", members)
                if attempts:
                    cur.executemany("INSERT INTO attempts VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", attempts)
                    for _ in attempts:  # counted per attempt written, as in SqliteStore
                        failpoints.hit("store-commit")
                if findings:
                    cur.executemany("INSERT INTO findings VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", findings)
                # the review queue's counts and rows of this shard, in the same transaction
                queue_index.on_save(PgConn(self.db, self.scope), rows)
        except self._psycopg.OperationalError as e:
            raise self._write_error(e) from None

    # -- the ledger: every paid answer, committed as it arrives
    def record_answer(self, key: str, value: dict[str, Any], usage: dict[str, int], cost_usd: float,
                      *, cache: bool) -> None:
        try:
            with self.db.transaction():
                self.db.execute("INSERT INTO ledger (scope, key, requests, prompt_tokens, completion_tokens, "
                                "cached_tokens, cost_usd, process, created_at) VALUES (%s, %s, 1, %s, %s, %s, %s, "
                                "%s, %s)", (self.scope, key, usage.get("prompt_tokens", 0),
                                            usage.get("completion_tokens", 0), usage.get("cached_tokens", 0),
                                            cost_usd, self.process, time.time()))
                if cache:
                    self.cache_put(key, value)
        except self._psycopg.OperationalError as e:
            raise self._write_error(e) from None

    def ledger_totals(self) -> dict[str, Any]:
        row = self._one("SELECT COUNT(DISTINCT process), COALESCE(SUM(requests), 0), COALESCE(SUM(prompt_tokens), 0), "
                        "COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(cached_tokens), 0), "
                        "COALESCE(SUM(cost_usd), 0) FROM ledger WHERE scope=%s", (self.scope,))
        assert row is not None
        return {"processes": int(row[0]), "requests": int(row[1]), "prompt_tokens": int(row[2]),
                "completion_tokens": int(row[3]), "cached_tokens": int(row[4]), "cost_usd": round(float(row[5]), 6)}

    def _add_quarantine(self, cur: Any, items: Iterable[dict[str, Any]]) -> None:
        rows = [(self.scope, q["file"], q["line"], q["field"], q["reason"], q.get("member_id"), q.get("kind"))
                for q in items]
        if rows:
            cur.executemany("INSERT INTO quarantine (scope, file, line, field, reason, member_id, kind) VALUES "
                            "(%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING", rows)

    def add_quarantine(self, items: Iterable[dict[str, Any]]) -> None:
        with self.db.transaction(), self.db.cursor() as cur:
            self._add_quarantine(cur, items)

    def iter_quarantine(self) -> Iterator[dict[str, Any]]:
        cur = self.db.execute("SELECT file, line, field, reason, member_id, kind FROM quarantine WHERE scope=%s "
                              "ORDER BY id", (self.scope,))
        for f, line, fld, reason, mid, kind in cur.fetchall():
            yield {"file": f, "line": line, "field": fld, "reason": reason, "member_id": mid, "kind": kind}

    def iter_records(self) -> Iterator[dict[str, Any]]:
        # a server-side cursor: millions of records stream in pages, never all in memory
        with self._psycopg.connect(self._dsn, autocommit=False, connect_timeout=10) as conn:
            with conn.cursor(name="records") as cur:
                cur.itersize = 2000
                cur.execute("SELECT record FROM members WHERE scope=%s ORDER BY seq", (self.scope,))
                for (rec,) in cur:
                    yield json.loads(rec)

    def iter_record_texts(self) -> Iterator[tuple[str, str, str]]:
        """(member_key, outcome, record as stored JSON text), in input order (what the export writes as is)."""
        with self._psycopg.connect(self._dsn, autocommit=False, connect_timeout=10) as conn:
            with conn.cursor(name="record_texts") as cur:
                cur.itersize = 2000
                cur.execute("SELECT member_key, outcome, record FROM members WHERE scope=%s ORDER BY seq",
                            (self.scope,))
                yield from cur

    def member_count(self) -> int:
        row = self._one("SELECT COUNT(*) FROM members WHERE scope=%s", (self.scope,))
        return int(row[0]) if row else 0

    def counts(self) -> dict[str, int]:
        cur = self.db.execute("SELECT outcome, COUNT(*) FROM members WHERE scope=%s GROUP BY outcome", (self.scope,))
        return {o: int(n) for o, n in cur}

    def top_rules(self, limit: int = 10) -> list[tuple[str, str, int]]:
        cur = self.db.execute("SELECT rule_id, gate, COUNT(*) FROM findings WHERE scope=%s AND severity='error' "
                              "GROUP BY rule_id, gate ORDER BY 3 DESC, 1 LIMIT %s", (self.scope, limit))
        return [(r, g, int(n)) for r, g, n in cur]

    def last_model_attempt(self, member_key: str) -> tuple[str | None, str] | None:
        row = self._one("SELECT response, findings FROM attempts WHERE scope=%s AND member_key=%s AND "
                        "kind != 'fallback' ORDER BY n DESC LIMIT 1", (self.scope, member_key))
        return (row[0], row[1]) if row else None

    # -- the studio
    def studio_conn(self) -> PgConn:
        """The studio's connection: reads every scope of this run (all its shards), writes in this scope."""
        return PgConn(self.db, self.scope, run_scopes(self.scope))

    # -- review decisions (append-only audit log)
    def add_decision(self, member_key: str, reviewer: str, action: str, reason: str, message_hash: str,
                     message: dict[str, Any] | None = None, **bound: Any) -> int:
        """Append a decision on a member of this scope (``bound``: basis, draft, verdict, findings, overrides)."""
        from .studio_db import insert_decision

        return insert_decision(PgConn(self.db, self.scope), member_key, reviewer, action, reason, message_hash,
                               message, **bound)

    def latest_decisions(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        cur = self.db.execute(
            "SELECT member_key, reviewer, action, reason, message_hash, message, created_at, verdict, overrides "
            "FROM decisions WHERE scope=%s AND action IN ('approve', 'reject') ORDER BY id", (self.scope,))
        for key, reviewer, action, reason, mhash, message, at, verdict, overrides in cur:
            out[key] = {"reviewer": reviewer, "action": action, "reason": reason, "message_hash": mhash,
                        "message": json.loads(message) if message else None, "at": at, "verdict": verdict,
                        "overrides": json.loads(overrides) if overrides else []}
        return out

    def iter_decisions(self) -> Iterator[dict[str, Any]]:
        cur = self.db.execute("SELECT id, member_key, reviewer, action, reason, message_hash, created_at FROM "
                              "decisions WHERE scope=%s ORDER BY id", (self.scope,))
        for i, key, reviewer, action, reason, mhash, at in cur.fetchall():
            yield {"id": i, "member_key": key, "reviewer": reviewer, "action": action, "reason": reason,
                   "message_hash": mhash, "created_at": at}

    # -- cache (shared by every scope)
    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self._one("SELECT response, finish_reason, prompt_tokens, completion_tokens FROM cache WHERE key=%s",
                        (key,))
        if not row:
            return None
        return {"text": row[0], "finish_reason": row[1], "prompt_tokens": row[2], "completion_tokens": row[3]}

    def cache_put(self, key: str, value: dict[str, Any]) -> None:
        self.db.execute("INSERT INTO cache VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (key) DO UPDATE SET "
                        "response=EXCLUDED.response, finish_reason=EXCLUDED.finish_reason, "
                        "prompt_tokens=EXCLUDED.prompt_tokens, completion_tokens=EXCLUDED.completion_tokens, "
                        "created_at=EXCLUDED.created_at",
                        (key, value.get("text") or "", value.get("finish_reason"), value.get("prompt_tokens", 0),
                         value.get("completion_tokens", 0), time.time()))

    # -- Batch API ledger
    def batch_has(self, key: str) -> bool:
        return self._one("SELECT 1 FROM batch_items WHERE scope=%s AND key=%s", (self.scope, key)) is not None

    def batch_file_count(self) -> int:
        row = self._one("SELECT COUNT(*) FROM batch_files WHERE scope=%s", (self.scope,))
        return int(row[0]) if row else 0

    def batch_add_file(self, file: str, items: list[tuple[str, int]], round_: int = 0) -> None:
        s = self.scope
        with self.db.transaction(), self.db.cursor() as cur:
            cur.execute("INSERT INTO batch_files (scope, file, requests, tokens, round, status, updated_at) VALUES "
                        "(%s,%s,%s,%s,%s,'written',%s) ON CONFLICT (scope, file) DO UPDATE SET "
                        "requests=EXCLUDED.requests, tokens=EXCLUDED.tokens, round=EXCLUDED.round, file_id=NULL, "
                        "batch_id=NULL, status='written', joined=0, answered=0, failed=0, errors=NULL, "
                        "updated_at=EXCLUDED.updated_at", (s, file, len(items), sum(t for _, t in items), round_,
                                                           time.time()))
            if items:
                cur.executemany("INSERT INTO batch_items (scope, key, file, tokens, state) VALUES "
                                "(%s,%s,%s,%s,'queued') ON CONFLICT (scope, key) DO UPDATE SET "
                                "file=EXCLUDED.file, state='queued'", [(s, k, file, t) for k, t in items])

    _FILE_COLS = ("file", "requests", "tokens", "round", "file_id", "batch_id", "status", "joined")

    def batch_files(self, *statuses: str) -> list[dict[str, Any]]:
        q = "SELECT " + ", ".join(self._FILE_COLS) + " FROM batch_files WHERE scope=%s"
        params: list[Any] = [self.scope]
        if statuses:
            q += " AND status = ANY(%s)"
            params.append(list(statuses))
        return [dict(zip(self._FILE_COLS, row)) for row in self.db.execute(q + " ORDER BY file", params)]

    _SETTABLE = {"requests", "tokens", "round", "file_id", "batch_id", "status", "joined", "answered", "failed",
                 "errors"}

    def batch_set_file(self, file: str, **fields: Any) -> None:
        bad = set(fields) - self._SETTABLE
        if bad:
            raise ValueError(f"not a batch_files column: {sorted(bad)}")
        sets = ", ".join(f"{k}=%s" for k in fields)
        self.db.execute(f"UPDATE batch_files SET {sets}, updated_at=%s WHERE scope=%s AND file=%s",
                        (*fields.values(), time.time(), self.scope, file))

    def batch_file_items(self, file: str, state: str | None = None) -> list[tuple[str, int, int]]:
        q = "SELECT key, tokens, tries FROM batch_items WHERE scope=%s AND file=%s" + (" AND state=%s" if state else "")
        params = (self.scope, file, state) if state else (self.scope, file)
        return [(k, int(t), int(n)) for k, t, n in self.db.execute(q + " ORDER BY key", params)]

    def batch_item_file(self, key: str) -> str:
        row = self._one("SELECT file FROM batch_items WHERE scope=%s AND key=%s", (self.scope, key))
        if row is None:
            raise KeyError(key)
        return str(row[0])

    def batch_mark_answered(self, keys: list[str]) -> None:
        self.db.execute("UPDATE batch_items SET state='answered', reason=NULL WHERE scope=%s AND key = ANY(%s)",
                        (self.scope, list(keys)))

    def batch_record_failures(self, file: str, batch_id: str | None,
                              failures: list[tuple[str, str, str, bool]]) -> None:
        if not failures:
            return
        now, s = time.time(), self.scope
        with self.db.transaction(), self.db.cursor() as cur:
            cur.executemany("INSERT INTO batch_failures (scope, key, file, batch_id, code, message, retryable, at) "
                            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                            [(s, k, file, batch_id, c, m, int(r), now) for k, c, m, r in failures])
            cur.executemany("UPDATE batch_items SET state='failed', tries=tries+1, reason=%s WHERE scope=%s AND key=%s",
                            [(f"{c}: {m}"[:500], s, k) for k, c, m, _ in failures])

    def batch_failed(self) -> list[dict[str, Any]]:
        q = ("SELECT i.key, i.tokens, i.tries, i.reason, f.code, f.retryable FROM batch_items i "
             "LEFT JOIN LATERAL (SELECT code, retryable FROM batch_failures WHERE scope=i.scope AND key=i.key "
             "ORDER BY id DESC LIMIT 1) f ON TRUE WHERE i.scope=%s AND i.state='failed' ORDER BY i.key")
        cols = ("key", "tokens", "tries", "reason", "code", "retryable")
        return [dict(zip(cols, row)) for row in self.db.execute(q, (self.scope,))]

    def batch_reset_tries(self) -> None:
        self.db.execute("UPDATE batch_items SET tries=0 WHERE scope=%s AND state='failed'", (self.scope,))

    def batch_summary(self) -> dict[str, Any]:
        s = (self.scope,)
        files = self._one("SELECT COUNT(*) FROM batch_files WHERE scope=%s AND status != 'superseded'", s)
        requests = self._one("SELECT COUNT(*) FROM batch_items WHERE scope=%s", s)
        states = {k: int(v) for k, v in self.db.execute(
            "SELECT state, COUNT(*) FROM batch_items WHERE scope=%s GROUP BY state", s)}
        reasons = {k: int(v) for k, v in self.db.execute(
            "SELECT COALESCE(code, '?'), COUNT(*) FROM batch_failures WHERE scope=%s GROUP BY code", s)}
        return {"files": int(files[0]) if files else 0, "requests": int(requests[0]) if requests else 0,
                "answered": states.get("answered", 0), "failed": states.get("failed", 0),
                "errors": sum(reasons.values()), "failure_codes": reasons}

    # -- start over, close
    def reset(self) -> None:
        """Start over (--restart): this scope's rows go; other shards' rows and the shared cache stay."""
        with self.db.transaction(), self.db.cursor() as cur:
            for table in SCOPED_TABLES:
                cur.execute(f"DELETE FROM {table} WHERE scope=%s", (self.scope,))
        self.close()

    def close(self) -> None:
        try:
            self.db.close()
        except Exception:
            pass
