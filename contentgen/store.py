"""The run store: SQLite (WAL), one row per member, every attempt and finding.

Schema changes are named, apply-once migrations recorded in ``migrations``.
The store is what makes a run resumable: a member whose row is ``decided`` is
never generated again, and the export is always rebuilt from the store, so a
member appears in it exactly once whatever the kill point.

``RunStore`` is the interface; ``SqliteStore`` is the default implementation.
A PostgreSQL store would implement the same methods (not built yet).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

from . import failpoints
from .errors import StoreError


def m001_initial(db: sqlite3.Connection) -> None:
    # one statement at a time: executescript() would COMMIT the migration's transaction early
    for stmt in (
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE members (
            member_key TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            member_id TEXT,
            state TEXT NOT NULL,
            outcome TEXT,
            segment TEXT,
            tier INTEGER,
            record TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX members_seq ON members(seq);
        CREATE INDEX members_outcome ON members(outcome);
        CREATE TABLE attempts (
            member_key TEXT NOT NULL,
            n INTEGER NOT NULL,
            kind TEXT NOT NULL,
            prompt TEXT,
            response TEXT,
            findings TEXT NOT NULL,
            prompt_tokens INTEGER DEFAULT 0,
            completion_tokens INTEGER DEFAULT 0,
            cached INTEGER DEFAULT 0,
            PRIMARY KEY (member_key, n)
        );
        CREATE TABLE findings (
            member_key TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            rule_id TEXT NOT NULL,
            gate TEXT NOT NULL,
            severity TEXT NOT NULL,
            field TEXT,
            span_start INTEGER,
            span_end INTEGER,
            excerpt TEXT,
            message TEXT
        );
        CREATE INDEX findings_rule ON findings(rule_id);
        CREATE INDEX findings_member ON findings(member_key);
        CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            file TEXT, line INTEGER, field TEXT, reason TEXT, member_id TEXT, kind TEXT,
            UNIQUE (file, line, field)
        );
        CREATE TABLE cache (
            key TEXT PRIMARY KEY,
            response TEXT NOT NULL,
            finish_reason TEXT,
            prompt_tokens INTEGER DEFAULT 0,
            completion_tokens INTEGER DEFAULT 0,
            created_at REAL NOT NULL
        );
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            member_key TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            action TEXT NOT NULL,
            reason TEXT,
            message_hash TEXT,
            message TEXT,
            created_at REAL NOT NULL
        );
        """
    ).split(";"):
        db.execute(stmt)


from .web import queue_index  # noqa: E402  (the studio's queue aggregates, kept as members are saved)
from .web.migrations import m002_studio, m003_studio_review  # noqa: E402  (the studio's tables)

MIGRATIONS = [("m001_initial", m001_initial), ("m002_studio", m002_studio),
              ("m003_studio_review", m003_studio_review)]


class RunStore(Protocol):
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def done_keys(self, keys: Iterable[str]) -> set[str]: ...
    def save_members(self, rows: list[dict[str, Any]]) -> None: ...
    def add_quarantine(self, items: Iterable[dict[str, Any]]) -> None: ...
    def iter_records(self) -> Iterator[dict[str, Any]]: ...
    def counts(self) -> dict[str, int]: ...
    def cache_get(self, key: str) -> dict[str, Any] | None: ...
    def cache_put(self, key: str, value: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class SqliteStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), timeout=5.0, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except OSError as e:
            raise StoreError(f"cannot create the run store ({e.strerror})", file=str(self.path),
                             hint="free disk space or choose a writable --out, then re-run to resume") from None
        except sqlite3.DatabaseError as e:
            msg = str(e)
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

    def save_members(self, rows: list[dict[str, Any]]) -> None:
        """One transaction per batch: a member's record, attempts and findings land together or not at all."""
        now = time.time()
        try:
            self.db.execute("BEGIN IMMEDIATE")
            for r in rows:
                key = r["member_key"]
                self.db.execute(
                    "INSERT OR REPLACE INTO members VALUES (?,?,?,?,?,?,?,?,?)",
                    (key, r["seq"], r.get("member_id"), "decided", r["outcome"], r.get("segment"), r.get("tier"),
                     json.dumps(r["record"], ensure_ascii=False), now))
                self.db.execute("DELETE FROM attempts WHERE member_key=?", (key,))
                self.db.execute("DELETE FROM findings WHERE member_key=?", (key,))
                for a in r.get("attempts", []):
                    self.db.execute(
                        "INSERT INTO attempts VALUES (?,?,?,?,?,?,?,?,?)",
                        (key, a["n"], a["kind"], a.get("prompt"), a.get("response"),
                         json.dumps(a.get("findings", []), ensure_ascii=False), a.get("prompt_tokens", 0),
                         a.get("completion_tokens", 0), int(a.get("cached", False))))
                    failpoints.hit("store-commit")
                    for f in a.get("findings", []):
                        span = f.get("span") or (None, None)
                        self.db.execute("INSERT INTO findings VALUES (?,?,?,?,?,?,?,?,?,?)",
                                        (key, a["n"], f["rule_id"], f["gate"], f["severity"], f.get("field"),
                                         span[0], span[1], f.get("excerpt"), f.get("message")))
            queue_index.on_save(self.db, rows)  # the review queue's counts and rows, in the same transaction
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as e:
            self.db.execute("ROLLBACK") if self.db.in_transaction else None
            if "disk" in str(e) or "full" in str(e):
                raise StoreError(f"cannot write the run store: {e}", file=str(self.path),
                                 hint="free disk space, then re-run the same command to resume") from None
            raise StoreError(f"cannot write the run store: {e}", file=str(self.path),
                             hint="check the output folder is writable, then re-run to resume") from None

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

    def member_count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM members").fetchone()[0]

    def counts(self) -> dict[str, int]:
        return {o: n for o, n in self.db.execute("SELECT outcome, COUNT(*) FROM members GROUP BY outcome")}

    def top_rules(self, limit: int = 10) -> list[tuple[str, str, int]]:
        q = ("SELECT rule_id, gate, COUNT(*) FROM findings WHERE severity='error' GROUP BY rule_id, gate "
             "ORDER BY 3 DESC LIMIT ?")
        return list(self.db.execute(q, (limit,)))

    # -- review decisions (append-only audit log)
    def add_decision(self, member_key: str, reviewer: str, action: str, reason: str, message_hash: str,
                     message: dict[str, Any] | None = None, **bound: Any) -> int:
        """Append a decision (``bound``: basis, draft, verdict, findings, overrides; see web.db)."""
        from .web.db import insert_decision

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

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass
