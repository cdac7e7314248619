"""Every query the studio makes, as named methods on ``StudioDB`` (one per thread's connection).

Views never hold SQL: they call these. Groups: a member's trail (record,
attempts, decisions), decisions (append-only, bound to the verdict they were
made on), sessions (server-side, revocable) and sign-in failures, the audit
log (keyset chunks), prompt variants and saved comparisons. The queue and the
dashboard read the aggregates in ``queue_index``.

The SQL is written once and runs on both backends through a ``dialect.Conn``
(``?`` placeholders, ``ON CONFLICT``, no SQLite-only functions). On PostgreSQL
the run's per-scope tables (meta, members, attempts, decisions, the queue
aggregates) are read over every scope of the run (all shards) and a decision is
written in its member's scope, where that shard's export finds it; sessions,
sign-in failures, variants, comparisons and the member index belong to the
database (one run).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from . import queue_index
from .dialect import Conn, conn_of

_DEC_COLS = ("id", "member_key", "reviewer", "action", "reason", "message_hash", "message", "created_at", "basis",
             "draft", "verdict", "findings", "overrides")
_JSON_COLS = ("message", "draft", "findings", "overrides")


def _decision(row: Sequence[Any]) -> dict[str, Any]:
    d = dict(zip(_DEC_COLS, row))
    for c in _JSON_COLS:
        d[c] = json.loads(d[c]) if d[c] else None
    return d


@contextlib.contextmanager
def transaction(db: Any) -> Iterator[Conn]:
    with conn_of(db).transaction() as c:
        yield c


def insert_decision(db: Any, member_key: str, reviewer: str, action: str, reason: str,
                    message_hash: str, message: dict[str, Any] | None = None, *, basis: str | None = None,
                    draft: dict[str, Any] | None = None, verdict: str | None = None,
                    findings: list[dict[str, Any]] | None = None,
                    overrides: list[dict[str, str]] | None = None) -> int:
    """Append a decision and update the queue aggregates, in one transaction (on PostgreSQL in the write
    scope of ``db``: the member's shard)."""
    c = conn_of(db)
    dumps = (lambda v: json.dumps(v, ensure_ascii=False) if v is not None else None)
    with c.transaction():
        did = c.insert_id(
            f"INSERT INTO decisions ({c.scol}member_key, reviewer, action, reason, message_hash, message, created_at, "
            f"basis, draft, verdict, findings, overrides) VALUES ({c.scol and '?,'}?,?,?,?,?,?,?,?,?,?,?,?)",
            c.sval((member_key, reviewer, action, reason, message_hash, dumps(message), time.time(), basis,
                    dumps(draft), verdict, dumps(findings), dumps(overrides or None))))
        queue_index.on_decision(c, member_key, action, overrides)
    return did


class StudioDB:
    def __init__(self, db: Any):
        self.c = conn_of(db)
        self.db = self.c  # what queue_index's functions take

    def _s(self, alias: str = "") -> tuple[str, list[Any]]:
        """(" AND <scope term>", args) for the run's scopes; empty in SQLite."""
        s, sa = self.c.sc(alias)
        return (f" AND {s}", sa) if s else ("", [])

    # -- run meta
    def meta(self, key: str) -> str | None:
        """A meta value of the run (on PostgreSQL: the studio's own scope first, else any shard's)."""
        s, sa = self._s()
        order = " ORDER BY CASE WHEN scope = ? THEN 0 ELSE 1 END, scope" if self.c.pg else ""
        row = self.c.execute(f"SELECT value FROM meta WHERE key = ?{s}{order} LIMIT 1",
                             (key, *sa, *([self.c.scope] if self.c.pg else []))).fetchone()
        return row[0] if row else None

    def scope_of(self, key: str) -> str | None:
        """The scope (shard) whose rows hold member ``key``; None when the run has no such member."""
        s, sa = self._s()
        row = self.c.execute(f"SELECT {'scope' if self.c.pg else 'NULL'} FROM members WHERE member_key = ?{s} "
                             f"LIMIT 1", (key, *sa)).fetchone()
        return None if row is None else (row[0] or "")

    # -- a member's trail
    def member(self, key: str) -> dict[str, Any] | None:
        s, sa = self._s()
        row = self.c.execute(f"SELECT member_key, seq, member_id, state, outcome, segment, tier, record, updated_at"
                             f"{', scope' if self.c.pg else ''} FROM members WHERE member_key = ?{s} LIMIT 1",
                             (key, *sa)).fetchone()
        if row is None:
            return None
        w, wa = self.c.at(row[9]).wc() if self.c.pg else ("", [])
        attempts = []
        for n, kind, prompt, response, findings, pt, ct, cached in self.c.execute(
                "SELECT n, kind, prompt, response, findings, prompt_tokens, completion_tokens, cached FROM attempts "
                f"WHERE member_key = ?{' AND ' + w if w else ''} ORDER BY n", (key, *wa)):
            attempts.append({"n": n, "kind": kind, "prompt": prompt, "response": response,
                             "findings": json.loads(findings or "[]"), "prompt_tokens": pt or 0,
                             "completion_tokens": ct or 0, "cached": bool(cached)})
        return {"key": row[0], "seq": row[1], "member_id": row[2] or row[0], "state": row[3], "outcome": row[4],
                "segment": row[5], "tier": row[6], "record": json.loads(row[7]), "updated_at": row[8],
                "attempts": attempts, "decisions": self.decisions_for(key)}

    # -- decisions
    def decisions_for(self, key: str) -> list[dict[str, Any]]:
        s, sa = self._s()
        return [_decision(r) for r in self.c.execute(
            f"SELECT {', '.join(_DEC_COLS)} FROM decisions WHERE member_key = ?{s} ORDER BY id", (key, *sa))]

    def decision(self, decision_id: int) -> dict[str, Any] | None:
        s, sa = self._s()
        row = self.c.execute(f"SELECT {', '.join(_DEC_COLS)} FROM decisions WHERE id = ?{s}",
                             (decision_id, *sa)).fetchone()
        return _decision(row) if row else None

    def add_decision(self, member_key: str, reviewer: str, action: str, reason: str, message_hash: str,
                     message: dict[str, Any] | None = None, **bound: Any) -> int:
        """Append a decision on ``member_key`` (on PostgreSQL in the member's own shard, where its export
        reads it)."""
        c = self.c
        if c.pg:
            scope = self.scope_of(member_key)
            if scope is None:
                raise KeyError(member_key)
            c = c.at(scope)
        return insert_decision(c, member_key, reviewer, action, reason, message_hash, message, **bound)

    def decision_counts(self) -> dict[str, int]:
        return {v: int(n) for v, n in queue_index.sums(self.c, "decision", ["value"])}

    # -- the audit log
    def audit_page(self, limit: int, *, before_id: int | None = None, member: str = "") -> list[dict[str, Any]]:
        """Newest first: ``limit`` decisions older than ``before_id``."""
        conds, args = [], []
        if before_id is not None:
            conds.append("d.id < ?")
            args.append(before_id)
        if member:
            conds.append("d.member_key = ?")
            args.append(member)
        s, sa = self.c.sc("d")
        if s:
            conds.append(s)
            args.extend(sa)
        where = f"WHERE {' AND '.join(conds)} " if conds else ""
        return self._audit(f"{where}ORDER BY d.id DESC LIMIT ?", [*args, limit])

    def audit_chunk(self, after_id: int, limit: int) -> list[dict[str, Any]]:
        """Oldest first: ``limit`` decisions after ``after_id`` (the CSV streams these)."""
        s, sa = self._s("d")
        return self._audit(f"WHERE d.id > ?{s} ORDER BY d.id LIMIT ?", [after_id, *sa, limit])

    def _audit(self, tail: str, args: list[Any]) -> list[dict[str, Any]]:
        out = []
        same = " AND q.scope = d.scope" if self.c.pg else ""
        for row in self.c.execute(
                "SELECT d.id, d.created_at, d.reviewer, d.action, d.member_key, q.member_id, q.outcome, d.reason, "
                "d.message_hash, q.subject, d.verdict, d.overrides, d.basis, d.message "
                f"FROM decisions d LEFT JOIN studio_queue q ON q.member_key = d.member_key{same} " + tail, args):
            overrides = json.loads(row[11]) if row[11] else []
            msg = json.loads(row[13]) if row[13] else None
            subject = ((msg or {}).get("subject") or (msg or {}).get("title") or (msg or {}).get("text")
                       or row[9] or "")
            out.append({"id": row[0], "created_at": row[1], "reviewer": row[2], "action": row[3],
                        "member_key": row[4], "member_id": row[5] or row[4], "outcome": row[6],
                        "reason": row[7] or "", "message_hash": row[8] or "", "subject": subject,
                        "verdict": row[10] or "", "overrides": overrides, "basis": row[12] or ""})
        return out

    def decision_total(self) -> int:
        return sum(self.decision_counts().values())

    # -- the run's figures for /metrics (the run store's counts, over every shard of the run)
    def counts(self) -> dict[str, int]:
        s, sa = self._s()
        return {o: int(n) for o, n in self.c.execute(
            f"SELECT outcome, COUNT(*) FROM members WHERE 1 = 1{s} GROUP BY outcome", sa)}

    def top_rules(self, limit: int = 10) -> list[tuple[str, str, int]]:
        s, sa = self._s()
        return [(r, g, int(n)) for r, g, n in self.c.execute(
            f"SELECT rule_id, gate, COUNT(*) FROM findings WHERE severity = 'error'{s} GROUP BY rule_id, gate "
            "ORDER BY 3 DESC, 1 LIMIT ?", (*sa, limit))]

    def iter_decisions(self) -> Iterator[dict[str, Any]]:
        s, sa = self._s()
        for i, key, reviewer, action in self.c.execute(
                f"SELECT id, member_key, reviewer, action FROM decisions WHERE 1 = 1{s} ORDER BY id", sa).fetchall():
            yield {"id": i, "member_key": key, "reviewer": reviewer, "action": action}

    # -- sessions
    def session_create(self, token_hash: str, username: str, csrf: str, password_fp: str, *, client: str = "",
                       user_agent: str = "") -> None:
        now = time.time()
        self.c.execute("INSERT INTO studio_sessions (token_hash, username, csrf, password_fp, created_at, last_seen, "
                        "client, user_agent) VALUES (?,?,?,?,?,?,?,?)",
                        (token_hash, username, csrf, password_fp, now, now, client[:64], user_agent[:200]))

    def session(self, token_hash: str) -> dict[str, Any] | None:
        row = self.c.execute("SELECT token_hash, username, csrf, password_fp, created_at, last_seen, revoked_at, "
                              "revoked_why FROM studio_sessions WHERE token_hash = ?", (token_hash,)).fetchone()
        if row is None:
            return None
        return dict(zip(("token_hash", "username", "csrf", "password_fp", "created_at", "last_seen", "revoked_at",
                         "revoked_why"), row))

    def session_touch(self, token_hash: str, now: float) -> None:
        self.c.execute("UPDATE studio_sessions SET last_seen = ? WHERE token_hash = ?", (now, token_hash))

    def session_revoke(self, token_hash: str, why: str) -> None:
        self.c.execute("UPDATE studio_sessions SET revoked_at = ?, revoked_why = ?, flash = NULL "
                        "WHERE token_hash = ? AND revoked_at IS NULL", (time.time(), why, token_hash))

    def sessions_revoke(self, why: str, username: str | None = None) -> int:
        """End every live session (of ``username``, or everyone's); returns how many."""
        if username is None:
            cur = self.c.execute("UPDATE studio_sessions SET revoked_at = ?, revoked_why = ?, flash = NULL "
                                  "WHERE revoked_at IS NULL", (time.time(), why))
        else:
            cur = self.c.execute("UPDATE studio_sessions SET revoked_at = ?, revoked_why = ?, flash = NULL "
                                  "WHERE username = ? AND revoked_at IS NULL", (time.time(), why, username))
        return cur.rowcount

    def sessions(self, *, live_only: bool = True) -> list[dict[str, Any]]:
        q = ("SELECT substr(token_hash, 1, 12), username, created_at, last_seen, revoked_at, revoked_why, client, "
             "user_agent FROM studio_sessions")
        if live_only:
            q += " WHERE revoked_at IS NULL"
        return [dict(zip(("id", "username", "created_at", "last_seen", "revoked_at", "revoked_why", "client",
                          "user_agent"), r)) for r in self.c.execute(q + " ORDER BY created_at")]

    def sessions_purge(self, before: float) -> int:
        """Forget sessions that ended (or went idle) before ``before``."""
        cur = self.c.execute("DELETE FROM studio_sessions WHERE last_seen < ? OR revoked_at < ?", (before, before))
        return cur.rowcount

    def flash_set(self, token_hash: str, payload: dict[str, Any]) -> None:
        self.c.execute("UPDATE studio_sessions SET flash = ? WHERE token_hash = ?",
                        (json.dumps(payload, ensure_ascii=False), token_hash))

    def flash_pop(self, token_hash: str) -> dict[str, Any] | None:
        """The session's flash, cleared; a plain read when there is none (no write lock per page view)."""
        row = self.c.execute("SELECT flash FROM studio_sessions WHERE token_hash = ?", (token_hash,)).fetchone()
        if not row or not row[0]:
            return None
        self.c.execute("UPDATE studio_sessions SET flash = NULL WHERE token_hash = ? AND flash = ?",
                        (token_hash, row[0]))
        return json.loads(row[0])

    # -- sign-in failures
    def login_locked_until(self, subjects: Sequence[str], now: float) -> float | None:
        marks = ",".join("?" * len(subjects))
        row = self.c.execute(f"SELECT MAX(locked_until) FROM studio_login_failures WHERE subject IN ({marks}) "
                              f"AND locked_until > ?", [*subjects, now]).fetchone()
        return row[0] if row and row[0] else None

    def login_failed(self, subject: str, now: float, *, limit: int, window: float, lock_for: float) -> float | None:
        """Count a failure; returns the lock's end when this one reaches ``limit`` within ``window``."""
        with self.c.transaction():
            self.c.lock_key("login:" + subject)  # two failures at once both count
            row = self.c.execute("SELECT failures, first_at FROM studio_login_failures WHERE subject = ?",
                                  (subject,)).fetchone()
            if row is None or now - row[1] > window:
                failures, first = 1, now
            else:
                failures, first = row[0] + 1, row[1]
            locked = now + lock_for if failures >= limit else None
            self.c.execute(
                "INSERT INTO studio_login_failures (subject, failures, first_at, last_at, locked_until) "
                "VALUES (?,?,?,?,?) ON CONFLICT (subject) DO UPDATE SET failures = excluded.failures, "
                "first_at = excluded.first_at, last_at = excluded.last_at, locked_until = excluded.locked_until",
                (subject, 0 if locked else failures, now if locked else first, now, locked))
        return locked

    def login_succeeded(self, subjects: Sequence[str]) -> None:
        self.c.executemany("DELETE FROM studio_login_failures WHERE subject = ?", [(s,) for s in subjects])

    def login_failures_purge(self, before: float) -> None:
        self.c.execute("DELETE FROM studio_login_failures WHERE last_at < ? AND (locked_until IS NULL OR "
                        "locked_until < ?)", (before, before))

    # -- the member index (input rows of queued members, for rebuilding plans)
    def queued_member_ids(self) -> set[str]:
        s, sa = self._s()
        return {r[0] for r in self.c.execute(
            "SELECT member_id FROM studio_queue WHERE (outcome IN ('review', 'rejected', 'fallback', 'repaired') "
            f"OR decided = 1){s}", sa)}

    def member_index_state(self) -> str | None:
        return self.meta("studio_member_index")

    def member_index_reset(self) -> None:
        w, wa = self.c.wc()
        with self.c.transaction():
            self.c.execute(f"DELETE FROM meta WHERE key = 'studio_member_index'{' AND ' + w if w else ''}", wa)
            self.c.execute("DELETE FROM studio_member_rows")

    def member_index_add(self, rows: list[tuple[str, str]]) -> None:
        if rows:
            with self.c.transaction():
                self.c.executemany("INSERT INTO studio_member_rows (member_id, row) VALUES (?, ?) "
                                   "ON CONFLICT (member_id) DO UPDATE SET row = excluded.row", rows)

    def member_index_done(self, fingerprint: str) -> None:
        c = self.c
        c.execute(f"INSERT INTO meta ({c.scol}key, value) VALUES ({c.scol and '?, '}'studio_member_index', ?) "
                  f"ON CONFLICT ({c.scol}key) DO UPDATE SET value = excluded.value", c.sval((fingerprint,)))

    def member_index_get(self, member_id: str) -> str | None:
        row = self.c.execute("SELECT row FROM studio_member_rows WHERE member_id = ?", (member_id,)).fetchone()
        return row[0] if row else None

    # -- previews (copywriters)
    def preview_totals(self) -> tuple[int, int, int, float | None]:
        return tuple(self.c.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), SUM(cost_usd) "
            "FROM studio_previews").fetchone())

    def variants(self) -> list[dict[str, Any]]:
        return [{"id": vid, "name": name, "parent": parent, "files": json.loads(files), "created_by": by,
                 "created_at": at} for vid, name, parent, files, by, at in self.c.execute(
            "SELECT id, name, parent, files, created_by, created_at FROM studio_variants ORDER BY created_at, id")]

    def variant(self, vid: str) -> dict[str, Any] | None:
        row = self.c.execute("SELECT id, name, parent, files, created_by, created_at FROM studio_variants "
                              "WHERE id = ?", (vid,)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "name": row[1], "parent": row[2], "files": json.loads(row[3]), "created_by": row[4],
                "created_at": row[5]}

    def variant_add(self, vid: str, name: str, parent: str | None, files: dict[str, str], user: str) -> None:
        self.c.execute("INSERT INTO studio_variants (id, name, parent, files, created_by, created_at) "
                        "VALUES (?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING",
                        (vid, name, parent, json.dumps(files, ensure_ascii=False), user, time.time()))

    def variant_count(self) -> int:
        return self.c.execute("SELECT COUNT(*) FROM studio_variants").fetchone()[0]

    def comparison_add(self, label: str, user: str, variant_ids: list[str], member_ids: list[str],
                       cells: list[tuple[str, str, dict[str, Any]]]) -> int:
        now = time.time()
        with self.c.transaction():
            cid = self.c.insert_id("INSERT INTO studio_comparisons (label, created_by, created_at, variant_ids, "
                                   "member_ids) VALUES (?,?,?,?,?)",
                                   (label, user, now, json.dumps(variant_ids), json.dumps(member_ids)))
            self.c.executemany(
                "INSERT INTO studio_previews (comparison_id, variant_id, member_id, outcome, result, prompt_tokens, "
                "completion_tokens, cost_usd, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                [(cid, vid, mid, r.get("outcome"), json.dumps(r, ensure_ascii=False, default=str),
                  (r.get("usage") or {}).get("prompt_tokens", 0), (r.get("usage") or {}).get("completion_tokens", 0),
                  r.get("cost_usd"), now) for vid, mid, r in cells])
        return cid

    def comparison(self, cid: int) -> dict[str, Any] | None:
        row = self.c.execute("SELECT id, label, created_by, created_at, variant_ids, member_ids FROM "
                              "studio_comparisons WHERE id = ?", (cid,)).fetchone()
        if row is None:
            return None
        cells = {}
        for vid, mid, outcome, result, pt, ct, cost in self.c.execute(
                "SELECT variant_id, member_id, outcome, result, prompt_tokens, completion_tokens, cost_usd "
                "FROM studio_previews WHERE comparison_id = ?", (cid,)):
            cells[(vid, mid)] = {"outcome": outcome, "result": json.loads(result), "prompt_tokens": pt,
                                 "completion_tokens": ct, "cost_usd": cost}
        return {"id": row[0], "label": row[1], "created_by": row[2], "created_at": row[3],
                "variant_ids": json.loads(row[4]), "member_ids": json.loads(row[5]), "cells": cells}

    def comparisons(self, limit: int = 100) -> list[dict[str, Any]]:
        return [{"id": cid, "label": label, "created_by": by, "created_at": at, "variant_ids": json.loads(vids),
                 "member_ids": json.loads(mids)} for cid, label, by, at, vids, mids in self.c.execute(
            "SELECT id, label, created_by, created_at, variant_ids, member_ids FROM studio_comparisons "
            "ORDER BY id DESC LIMIT ?", (limit,))]
