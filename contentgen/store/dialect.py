"""The seam between the studio's SQL and the two backends: one connection wrapper, two dialects.

``studio_db`` and ``queue_index`` write their SQL once, with ``?`` placeholders, and run it through a
``Conn``: ``SqliteConn`` passes it to sqlite3 as it is; ``PgConn`` turns ``?`` into psycopg's ``%s``,
opens transactions with psycopg (``BEGIN IMMEDIATE`` on SQLite), returns new ids with ``RETURNING id``
and adds the run's scopes to the queries that read or write per-scope rows.

Scopes (PostgreSQL only): a database holds one run; each shard's rows carry its scope (``shard-i-of-n``,
``''`` unsharded). The studio reads every scope of its run (``scopes``) and writes a member's rows in that
member's scope (``at(scope)``); SQLite has one run per file and no scope column.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

_SHARD = re.compile(r"shard-(\d+)-of-(\d+)")


def run_scopes(scope: str) -> tuple[str, ...]:
    """Every scope of the run that ``scope`` belongs to: all shards of a sharded run, else the scope itself."""
    m = _SHARD.fullmatch(scope or "")
    if not m:
        return (scope or "",)
    n = int(m.group(2))
    return tuple(f"shard-{i}-of-{n}" for i in range(n))


class SqliteConn:
    """A sqlite3 connection (autocommit mode, ``isolation_level=None``) as the studio's ``Conn``."""

    pg = False
    hint = "+"  # a unary + on a column keeps SQLite's planner off an index (see queue_index)

    def __init__(self, db: sqlite3.Connection):
        self.raw = db
        self.scope = ""
        self.scopes: tuple[str, ...] = ("",)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.raw.executemany(sql, rows)

    def insert_id(self, sql: str, params: Sequence[Any]) -> int:
        return int(self.raw.execute(sql, params).lastrowid)

    def insert_rows(self, table: str, cols: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]],
                    tail: str = "") -> None:
        """INSERT every row of ``rows`` (``types``: the columns' PostgreSQL types; ``tail``: ON CONFLICT ...)."""
        if rows:
            self.raw.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({','.join('?' * len(cols))}) "
                                 f"{tail}", rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqliteConn]:
        if self.raw.in_transaction:  # already inside the caller's (the run's save)
            yield self
            return
        self.raw.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if self.raw.in_transaction:
                self.raw.execute("ROLLBACK")
            raise
        self.raw.execute("COMMIT")

    def lock_scope(self) -> None:  # BEGIN IMMEDIATE already holds the write lock
        pass

    def lock_key(self, name: str) -> None:
        pass

    def at(self, scope: str) -> SqliteConn:
        return self

    # scope terms: none in SQLite
    def sc(self, alias: str = "") -> tuple[str, list[Any]]:
        """(SQL term, args) limiting ``alias``'s rows to the run's scopes; ``("", [])`` in SQLite."""
        return "", []

    def wc(self, alias: str = "") -> tuple[str, list[Any]]:
        """(SQL term, args) limiting ``alias``'s rows to the write scope; ``("", [])`` in SQLite."""
        return "", []

    @property
    def scol(self) -> str:
        """``"scope, "`` where rows carry a scope column, else ``""`` (for INSERT column lists)."""
        return ""

    def sval(self, row: Sequence[Any]) -> tuple:
        """``row`` with the write scope in front where rows carry a scope column."""
        return tuple(row)


_Q = re.compile(r"\?")


class PgConn:
    """A psycopg 3 connection (autocommit) as the studio's ``Conn``, reading ``scopes``, writing ``scope``."""

    pg = True
    hint = ""

    def __init__(self, db: Any, scope: str = "", scopes: Sequence[str] | None = None):
        self.raw = db
        self.scope = scope
        self.scopes = tuple(scopes) if scopes is not None else run_scopes(scope)
        self._sql: dict[str, str] = {}

    def _t(self, sql: str) -> str:
        out = self._sql.get(sql)
        if out is None:
            out = self._sql[sql] = _Q.sub("%s", sql.replace("%", "%%"))
        return out

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(self._t(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            with self.raw.cursor() as cur:
                cur.executemany(self._t(sql), rows)

    def insert_id(self, sql: str, params: Sequence[Any]) -> int:
        return int(self.raw.execute(self._t(sql + " RETURNING id"), tuple(params)).fetchone()[0])

    def insert_rows(self, table: str, cols: Sequence[str], types: Sequence[str], rows: Sequence[Sequence[Any]],
                    tail: str = "") -> None:
        """One statement for all ``rows``: the columns travel as arrays and ``unnest`` turns them back into rows
        (a chunk's hundreds of rows in one round trip and one plan, instead of a statement per row)."""
        if not rows:
            return
        arrays = [list(col) for col in zip(*rows)]
        unnest = ", ".join(f"%s::{t}[]" for t in types)
        self.raw.execute(f"INSERT INTO {table} ({', '.join(cols)}) SELECT * FROM unnest({unnest}) {tail}", arrays)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PgConn]:
        with self.raw.transaction():
            yield self

    def lock_scope(self) -> None:
        """Serialize writers of the queue aggregates of the write scope until the transaction ends (what
        SQLite's write lock does): a run's save and a reviewer's decision on that shard never interleave."""
        self.lock_key(self.scope)

    def lock_key(self, name: str, space: int = 0x71756575) -> None:
        """Serialize this transaction with others that lock ``name`` (a read-then-write, like SQLite's
        write lock), until it ends."""
        self.raw.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (space, name))

    def at(self, scope: str) -> PgConn:
        c = PgConn(self.raw, scope, self.scopes)
        c._sql = self._sql
        return c

    def sc(self, alias: str = "") -> tuple[str, list[Any]]:
        col = f"{alias}.scope" if alias else "scope"
        if len(self.scopes) == 1:
            return f"{col} = ?", [self.scopes[0]]
        return f"{col} = ANY(?)", [list(self.scopes)]

    def wc(self, alias: str = "") -> tuple[str, list[Any]]:
        return (f"{alias}.scope = ?" if alias else "scope = ?"), [self.scope]

    @property
    def scol(self) -> str:
        return "scope, "

    def sval(self, row: Sequence[Any]) -> tuple:
        return (self.scope, *row)


Conn = SqliteConn | PgConn


def conn_of(db: Any) -> Conn:
    """``db`` as a ``Conn``: a ``Conn`` as it is, a sqlite3 connection wrapped."""
    if isinstance(db, (SqliteConn, PgConn)):
        return db
    if isinstance(db, sqlite3.Connection):
        return SqliteConn(db)
    raise TypeError(f"not a studio connection: {type(db).__name__}")


def and_(*terms: tuple[str, list[Any]]) -> tuple[str, list[Any]]:
    """Join (term, args) pairs with AND, leaving out empty terms."""
    sql = [t for t, _ in terms if t]
    args = [a for t, aa in terms if t for a in aa]
    return " AND ".join(sql), args
