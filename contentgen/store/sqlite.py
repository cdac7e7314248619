"""The run store: SQLite (WAL), one row per member, every attempt and finding.

Schema changes are named, apply-once migrations recorded in ``migrations``.
The store is what makes a run resumable: a member whose row is ``decided`` is
never generated again, and the export is always rebuilt from the store, so a
member appears in it exactly once whatever the kill point.

``RunStore`` (``base.py``) is the interface; ``SqliteStore`` is the default implementation
and ``PostgresStore`` (``postgres.py``) the one shards of a run share.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .. import failpoints
from ..errors import StoreError
from . import queue_index
from .migrations import MIGRATIONS


def _permission_problem(path: Path) -> str | None:
    """What this process may not do to the store or its folder, in words; None when access is fine."""
    folder = path.parent
    if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
        return f"this user may not write to the folder {folder}"
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if p.exists() and not os.access(p, os.R_OK | os.W_OK):
            return f"this user may not read and write {p}"
    return None


_PERMISSION_HINT = ("fix the permission (chmod/chown the file and its folder for the user that runs contentgen), "
                    "then re-run the same command to resume; do not --restart: the store holds answers already "
                    "paid for")


class SqliteStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.process = f"{os.getpid()}:{uuid.uuid4().hex[:8]}"  # this opening of the store, in the ledger
        problem = _permission_problem(self.path)
        if problem:
            raise StoreError(f"permission denied on the run store: {problem}", file=str(self.path),
                             hint=_PERMISSION_HINT)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=5.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except PermissionError as e:
            raise StoreError(f"permission denied on the run store ({e.strerror})", file=str(self.path),
                             hint=_PERMISSION_HINT) from None
        except OSError as e:
            raise StoreError(f"cannot create the run store ({e.strerror})", file=str(self.path),
                             hint="free disk space or choose a writable --out, then re-run to resume") from None
        except sqlite3.DatabaseError as e:
            msg = str(e)
            if "readonly" in msg or "unable to open" in msg or "permission" in msg.lower():
                raise StoreError(f"cannot open the run store ({msg})", file=str(self.path),
                                 hint=_PERMISSION_HINT) from None
            if "full" in msg or "disk I/O" in msg:
                raise StoreError(f"cannot write the run store ({msg})", file=str(self.path),
                                 hint="free disk space, then re-run the same command to resume") from None
            if "locked" in msg:
                raise StoreError(f"the run store is locked by another process ({msg})", file=str(self.path),
                                 hint="wait for the other contentgen run on this output folder to finish") from None
            raise StoreError(f"the run store is unreadable ({msg})", file=str(self.path),
                             hint="move the damaged run.db aside and re-run with --restart; the export files "
                                  "already written stay valid") from None

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL)")
        done = {r[0] for r in self.db.execute("SELECT name FROM migrations")}
        for name, fn in MIGRATIONS:
            if name in done:
                continue
            self.db.execute("BEGIN IMMEDIATE")
            try:
                fn(self.db)
                self.db.execute("INSERT INTO migrations VALUES (?, ?)", (name, time.time()))
                self.db.execute("COMMIT")
            except Exception:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise

    # -- meta
    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                        (key, value))

    # -- members
    def done_keys(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        out: set[str] = set()
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            q = f"SELECT member_key FROM members WHERE member_key IN ({','.join('?' * len(part))})"
            out.update(r[0] for r in self.db.execute(q, part))
        return out

    def save_members(self, rows: list[dict[str, Any]], quarantine: Iterable[dict[str, Any]] = ()) -> None:
        """One transaction per batch: a member's record, attempts and findings (and the quarantine records of
        its rows) land together or not at all."""
        now = time.time()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.add_quarantine(quarantine)
            # one statement per table for the whole batch (executemany); a member saved twice in one batch
            # keeps its last row, as a statement per row in order would
            last = list({r["member_key"]: r for r in rows}.values())
            members, attempts, findings = [], [], []
            for r in last:
                key = r["member_key"]
                members.append((key, r["seq"], r.get("member_id"), "decided", r["outcome"], r.get("segment"),
                                r.get("tier"), json.dumps(r["record"], ensure_ascii=False), now))
                for a in r.get("attempts", []):
                    attempts.append((key, a["n"], a["kind"], a.get("prompt"), a.get("response"),
                                     json.dumps(a.get("findings", []), ensure_ascii=False), a.get("prompt_tokens", 0),
                                     a.get("completion_tokens", 0), int(a.get("cached", False))))
                    failpoints.hit("store-commit")
                    for f in a.get("findings", []):
                        span = f.get("span") or (None, None)
                        findings.append((key, a["n"], f["rule_id"], f["gate"], f["severity"], f.get("field"),
                                         span[0], span[1], f.get("excerpt"), f.get("message")))
            keys = [(m[0],) for m in members]
            self.db.executemany("INSERT OR REPLACE INTO members VALUES (?,?,?,?,?,?,?,?,?)", members)
            self.db.executemany("DELETE FROM attempts WHERE member_key=?", keys)
            self.db.executemany("DELETE FROM findings WHERE member_key=?", keys)
            self.db.executemany("INSERT INTO attempts VALUES (?,?,?,?,?,?,?,?,?)", attempts)
            self.db.executemany("INSERT INTO findings VALUES (?,?,?,?,?,?,?,?,?,?)", findings)
            queue_index.on_save(self.db, rows)  # the review queue's counts and rows, in the same transaction
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as e:
            self.db.execute("ROLLBACK") if self.db.in_transaction else None
            if "disk" in str(e) or "full" in str(e):
                raise StoreError(f"cannot write the run store: {e}", file=str(self.path),
                                 hint="free disk space, then re-run the same command to resume") from None
            raise StoreError(f"cannot write the run store: {e}", file=str(self.path),
                             hint="check the output folder is writable, then re-run to resume") from None

    # -- the ledger: every paid answer, committed as it arrives
    def record_answer(self, key: str, value: dict[str, Any], usage: dict[str, int], cost_usd: float,
                      *, cache: bool) -> None:
        """One transaction: the answer's usage and cost in the ledger and (when reusable) the answer in the cache,
        so a kill after the answer arrived neither loses what it cost nor pays for it again."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO ledger (key, requests, prompt_tokens, completion_tokens, cached_tokens, "
                            "cost_usd, process, created_at) VALUES (?, 1, ?, ?, ?, ?, ?, ?)",
                            (key, usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0),
                             usage.get("cached_tokens", 0), cost_usd, self.process, time.time()))
            if cache:
                self.cache_put(key, value)
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as e:
            self.db.execute("ROLLBACK") if self.db.in_transaction else None
            raise StoreError(f"cannot write the run store: {e}", file=str(self.path),
                             hint=("free disk space" if "full" in str(e) or "disk" in str(e)
                                   else "check the output folder is writable") + ", then re-run the same command "
                                  "to resume") from None

    def ledger_totals(self) -> dict[str, Any]:
        """Requests, tokens and cost of every answer this run was given, over all its processes."""
        row = self.db.execute("SELECT COUNT(DISTINCT process), COALESCE(SUM(requests), 0), "
                              "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
                              "COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(cost_usd), 0) FROM ledger").fetchone()
        return {"processes": row[0], "requests": row[1], "prompt_tokens": row[2], "completion_tokens": row[3],
                "cached_tokens": row[4], "cost_usd": round(row[5], 6)}

    def add_quarantine(self, items: Iterable[dict[str, Any]]) -> None:
        self.db.executemany(
            "INSERT OR IGNORE INTO quarantine (file, line, field, reason, member_id, kind) VALUES (?,?,?,?,?,?)",
            [(q["file"], q["line"], q["field"], q["reason"], q.get("member_id"), q.get("kind")) for q in items])

    def iter_quarantine(self) -> Iterator[dict[str, Any]]:
        cur = self.db.execute("SELECT file, line, field, reason, member_id, kind FROM quarantine ORDER BY id")
        for f, line, fld, reason, mid, kind in cur:
            yield {"file": f, "line": line, "field": fld, "reason": reason, "member_id": mid, "kind": kind}

    def iter_records(self) -> Iterator[dict[str, Any]]:
        cur = self.db.execute("SELECT record FROM members ORDER BY seq")
        for (rec,) in cur:
            yield json.loads(rec)

    def iter_record_texts(self) -> Iterator[tuple[str, str, str]]:
        """(member_key, outcome, record as stored JSON text), in input order: the export writes the stored
        text as it is unless a reviewer's decision changes the record."""
        yield from self.db.execute("SELECT member_key, outcome, record FROM members ORDER BY seq")

    def last_model_attempt(self, member_key: str) -> tuple[str | None, str] | None:
        """(response, findings JSON) of the member's last model attempt (not a fallback); None when it had none."""
        row = self.db.execute("SELECT response, findings FROM attempts WHERE member_key = ? AND kind != 'fallback' "
                              "ORDER BY n DESC LIMIT 1", (member_key,)).fetchone()
        return (row[0], row[1]) if row else None

    def member_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM members").fetchone()[0]

    def counts(self) -> dict[str, int]:
        return {o: n for o, n in self.db.execute("SELECT outcome, COUNT(*) FROM members GROUP BY outcome")}

    def top_rules(self, limit: int = 10) -> list[tuple[str, str, int]]:
        q = ("SELECT rule_id, gate, COUNT(*) FROM findings WHERE severity='error' GROUP BY rule_id, gate "
             "ORDER BY 3 DESC LIMIT ?")
        return list(self.db.execute(q, (limit,)))

    # -- the studio
    def studio_conn(self):
        """The studio's connection (a ``dialect.SqliteConn`` over this store's)."""
        from .dialect import SqliteConn

        return SqliteConn(self.db)

    # -- review decisions (append-only audit log)
    def add_decision(self, member_key: str, reviewer: str, action: str, reason: str, message_hash: str,
                     message: dict[str, Any] | None = None, **bound: Any) -> int:
        """Append a decision (``bound``: basis, draft, verdict, findings, overrides; see studio_db)."""
        from .studio_db import insert_decision

        return insert_decision(self.db, member_key, reviewer, action, reason, message_hash, message, **bound)

    def latest_decisions(self) -> dict[str, dict[str, Any]]:
        """The last approve/reject per member (edits without a verdict don't change the export)."""
        out: dict[str, dict[str, Any]] = {}
        q = ("SELECT member_key, reviewer, action, reason, message_hash, message, created_at, verdict, overrides "
             "FROM decisions WHERE action IN ('approve', 'reject') ORDER BY id")
        for key, reviewer, action, reason, mhash, message, at, verdict, overrides in self.db.execute(q):
            out[key] = {"reviewer": reviewer, "action": action, "reason": reason, "message_hash": mhash,
                        "message": json.loads(message) if message else None, "at": at, "verdict": verdict,
                        "overrides": json.loads(overrides) if overrides else []}
        return out

    def iter_decisions(self) -> Iterator[dict[str, Any]]:
        q = "SELECT id, member_key, reviewer, action, reason, message_hash, created_at FROM decisions ORDER BY id"
        for i, key, reviewer, action, reason, mhash, at in self.db.execute(q):
            yield {"id": i, "member_key": key, "reviewer": reviewer, "action": action, "reason": reason,
                   "message_hash": mhash, "created_at": at}

    # -- cache
    def cache_get(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT response, finish_reason, prompt_tokens, completion_tokens FROM cache "
                              "WHERE key=?", (key,)).fetchone()
        if not row:
            return None
        return {"text": row[0], "finish_reason": row[1], "prompt_tokens": row[2], "completion_tokens": row[3]}

    def cache_put(self, key: str, value: dict[str, Any]) -> None:
        self.db.execute("INSERT OR REPLACE INTO cache VALUES (?,?,?,?,?,?)",
                        (key, value.get("text") or "", value.get("finish_reason"), value.get("prompt_tokens", 0),
                         value.get("completion_tokens", 0), time.time()))

    # -- Batch API ledger (contentgen/llm/batch.py); every batch SQL statement is here
    def batch_has(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM batch_items WHERE key=?", (key,)).fetchone() is not None

    def batch_file_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM batch_files").fetchone()[0]

    def batch_add_file(self, file: str, items: list[tuple[str, int]], round_: int = 0) -> None:
        """A written request file and its requests (key, estimated input tokens), in one transaction."""
        now = time.time()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute("INSERT OR REPLACE INTO batch_files (file, requests, tokens, round, status, updated_at) "
                            "VALUES (?,?,?,?, 'written', ?)", (file, len(items), sum(t for _, t in items), round_,
                                                               now))
            self.db.executemany("INSERT INTO batch_items (key, file, tokens, state) VALUES (?,?,?, 'queued') "
                                "ON CONFLICT(key) DO UPDATE SET file=excluded.file, state='queued'",
                                [(k, file, t) for k, t in items])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def batch_files(self, *statuses: str) -> list[dict[str, Any]]:
        q = ("SELECT file, requests, tokens, round, file_id, batch_id, status, joined FROM batch_files"
             + (f" WHERE status IN ({','.join('?' * len(statuses))})" if statuses else "") + " ORDER BY file")
        cols = ("file", "requests", "tokens", "round", "file_id", "batch_id", "status", "joined")
        return [dict(zip(cols, row)) for row in self.db.execute(q, statuses)]

    def batch_set_file(self, file: str, **fields: Any) -> None:
        sets = ", ".join(f"{k}=?" for k in fields)
        self.db.execute(f"UPDATE batch_files SET {sets}, updated_at=? WHERE file=?",
                        (*fields.values(), time.time(), file))

    def batch_file_items(self, file: str, state: str | None = None) -> list[tuple[str, int, int]]:
        """(key, tokens, tries) of a file's requests, optionally in one state."""
        q = "SELECT key, tokens, tries FROM batch_items WHERE file=?" + (" AND state=?" if state else "")
        return list(self.db.execute(q, (file, state) if state else (file,)))

    def batch_item_file(self, key: str) -> str:
        return self.db.execute("SELECT file FROM batch_items WHERE key=?", (key,)).fetchone()[0]

    def batch_mark_answered(self, keys: list[str]) -> None:
        self.db.executemany("UPDATE batch_items SET state='answered', reason=NULL WHERE key=?", [(k,) for k in keys])

    def batch_record_failures(self, file: str, batch_id: str | None,
                              failures: list[tuple[str, str, str, bool]]) -> None:
        """(key, code, message, retryable) per request the batch did not answer; the request is 'failed'."""
        now = time.time()
        self.db.executemany("INSERT INTO batch_failures VALUES (?,?,?,?,?,?,?)",
                            [(k, file, batch_id, c, m, int(r), now) for k, c, m, r in failures])
        self.db.executemany("UPDATE batch_items SET state='failed', tries=tries+1, reason=? WHERE key=?",
                            [(f"{c}: {m}"[:500], k) for k, c, m, _ in failures])

    def batch_failed(self) -> list[dict[str, Any]]:
        """Requests in 'failed' state with their last failure (code, retryable)."""
        q = ("SELECT i.key, i.tokens, i.tries, i.reason, f.code, f.retryable FROM batch_items i "
             "LEFT JOIN batch_failures f ON f.rowid = (SELECT MAX(rowid) FROM batch_failures WHERE key=i.key) "
             "WHERE i.state='failed' ORDER BY i.key")
        cols = ("key", "tokens", "tries", "reason", "code", "retryable")
        return [dict(zip(cols, row)) for row in self.db.execute(q)]

    def batch_reset_tries(self) -> None:
        """A new run of the command gives every failed request a fresh set of resubmissions."""
        self.db.execute("UPDATE batch_items SET tries=0 WHERE state='failed'")

    def batch_summary(self) -> dict[str, Any]:
        files = self.db.execute("SELECT COUNT(*) FROM batch_files WHERE status != 'superseded'").fetchone()[0]
        requests = self.db.execute("SELECT COUNT(*) FROM batch_items").fetchone()[0]
        states = dict(self.db.execute("SELECT state, COUNT(*) FROM batch_items GROUP BY state"))
        reasons = dict(self.db.execute("SELECT COALESCE(code, '?'), COUNT(*) FROM batch_failures GROUP BY code"))
        return {"files": files, "requests": requests, "answered": states.get("answered", 0),
                "failed": states.get("failed", 0), "errors": sum(reasons.values()), "failure_codes": reasons}

    def reset(self) -> None:
        """Start over (--restart): the store file goes; open a new store afterwards."""
        self.close()
        for p in (self.path, self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")):
            p.unlink(missing_ok=True)

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass
