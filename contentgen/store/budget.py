"""Shared rate budgets: one RPM/TPM budget for the shards of a run, kept in a database.

``SqliteSharedBudget``: a SQLite file, for the shard processes of one machine (``time.monotonic`` is their
shared clock). ``PostgresSharedBudget``: a PostgreSQL database (``llm.shared_budget: postgresql://...``), for
shards on any machines; its clock is the database server's, so the machines' clocks need not agree.
Both change the levels in one transaction per decision (``BEGIN IMMEDIATE``; ``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from ..llm.budget import RateBudget
from . import is_postgres

__all__ = ["PostgresSharedBudget", "SqliteSharedBudget", "is_postgres"]


class _StoredBudget(RateBudget):
    """A budget whose levels live in a database row: every decision loads the row, changes the levels and writes
    them back in one transaction (``_transaction``, ``_load``, ``_save`` per backend). A decision made inside
    another (observe -> pause) joins the outer transaction."""

    shared = True
    _depth = 0

    def _transaction(self) -> contextlib.AbstractContextManager[object]:
        raise NotImplementedError

    def _load(self) -> None:
        raise NotImplementedError

    def _save(self) -> None:
        raise NotImplementedError

    def _set_levels(self, req: float | None, tok: float | None) -> None:
        """Levels read from the row (a new budget, NULL, starts full as a local one does)."""
        if self.requests is not None:
            self.requests.level = self.requests.capacity if req is None else float(req)
        if self.tokens is not None:
            self.tokens.level = self.tokens.capacity if tok is None else float(tok)

    def _levels(self) -> tuple[float | None, float | None]:
        return (self.requests.level if self.requests else None, self.tokens.level if self.tokens else None)

    @contextlib.contextmanager
    def _txn(self):  # type: ignore[override]
        if self._depth:                       # nested (observe -> pause): one transaction
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        with self._transaction():
            self._load()
            self._depth = 1
            try:
                yield
            finally:
                self._depth = 0
            self._save()                      # only when the decision finished: an error rolls back


class SqliteSharedBudget(_StoredBudget):
    """One RPM/TPM budget for several processes on one machine (the shards of a run): the buckets and the
    provider's pause live in a SQLite file, changed in ``BEGIN IMMEDIATE`` transactions.

    Each process paces with its own configured limits (give every shard the account's whole limit);
    the levels they spend from are shared, so together they stay within one limit. The clock is
    ``time.monotonic``, which every process on one Linux machine shares.
    """

    def __init__(self, path: Path, key: str, rpm: int | None = None, tpm: int | None = None, *,
                 headroom: float = 0.99, burst_s: float = 0.05) -> None:
        super().__init__(rpm, tpm, headroom=headroom, burst_s=burst_s, clock=time.monotonic)
        self.path, self.key = Path(path), key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.execute("CREATE TABLE IF NOT EXISTS budget (key TEXT PRIMARY KEY, requests REAL, tokens REAL, "
                        "updated REAL NOT NULL, paused_until REAL NOT NULL DEFAULT 0)")

    @contextlib.contextmanager
    def _transaction(self):  # type: ignore[override]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _load(self) -> None:
        row = self.db.execute("SELECT requests, tokens, updated, paused_until FROM budget WHERE key=?",
                              (self.key,)).fetchone()
        if row is None:                       # a new budget starts full, as a local one does
            row = (None, None, self._clock(), 0.0)
        req, tok, self._last, self._paused_until = row
        self._set_levels(req, tok)

    def _save(self) -> None:
        self.db.execute("INSERT INTO budget VALUES (?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET "
                        "requests=excluded.requests, tokens=excluded.tokens, updated=excluded.updated, "
                        "paused_until=excluded.paused_until", (self.key, *self._levels(), self._last,
                                                                self._paused_until))

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()


class PostgresSharedBudget(_StoredBudget):
    """One RPM/TPM budget for shard processes on any machines: the buckets and the provider's pause live in the
    ``budget`` table of a PostgreSQL database, read ``FOR UPDATE`` and written in one transaction per decision.
    Times are the database server's clock (``clock_timestamp()``), read at the start of each transaction."""

    def __init__(self, url: str, key: str, rpm: int | None = None, tpm: int | None = None, *,
                 headroom: float = 0.99, burst_s: float = 0.05) -> None:
        from .postgres import PostgresStore

        store = PostgresStore(url)  # connects and applies the migrations (the budget table is one)
        self.db, self.key = store.db, key
        self._offset = self._server_offset()
        super().__init__(rpm, tpm, headroom=headroom, burst_s=burst_s, clock=self._now)

    def _server_offset(self) -> float:
        row = self.db.execute("SELECT extract(epoch from clock_timestamp())::float8").fetchone()
        return float(row[0]) - time.monotonic()

    def _now(self) -> float:
        return time.monotonic() + self._offset

    def _transaction(self):  # type: ignore[override]
        return self.db.transaction()

    def _load(self) -> None:
        self.db.execute("INSERT INTO budget (key, requests, tokens, updated, paused_until) VALUES "
                        "(%s, NULL, NULL, NULL, 0) ON CONFLICT (key) DO NOTHING", (self.key,))
        row = self.db.execute("SELECT requests, tokens, updated, paused_until, "
                              "extract(epoch from clock_timestamp())::float8 FROM budget WHERE key=%s FOR UPDATE",
                              (self.key,)).fetchone()
        self._offset = float(row[4]) - time.monotonic()
        req, tok, updated, paused = row[0], row[1], row[2], row[3]
        self._last = self._now() if updated is None else float(updated)  # a new budget starts full
        self._paused_until = float(paused or 0.0)
        self._set_levels(req, tok)

    def _save(self) -> None:
        self.db.execute("UPDATE budget SET requests=%s, tokens=%s, updated=%s, paused_until=%s WHERE key=%s",
                        (*self._levels(), self._last, self._paused_until, self.key))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()
