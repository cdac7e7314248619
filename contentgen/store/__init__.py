"""The run store: every member's record, attempts and findings, the answer cache, the spend ledger and the
Batch API ledger, in SQLite (default, one file per run folder) or PostgreSQL (one database the shards of a run,
the rate budget they share and the studio all use).

``open_store(url)`` opens either: ``sqlite:///path/run.db`` (or a plain path) or ``postgresql://user@host:port/db``.
A run folder remembers where its store is: ``run.db`` for SQLite, ``store.json`` (URL without password, and
the run's scope) for PostgreSQL; ``open_run_store(out)`` opens whichever it has. No SQL lives outside this
package: callers use the named methods of ``RunStore`` (and ``studio_db.StudioDB`` for the studio's tables).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .base import RunStore
from .migrations import MIGRATIONS
from .sqlite import SqliteStore

def _database_errors() -> tuple[type[BaseException], ...]:
    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


DATABASE_ERRORS = _database_errors()  # what a backend raises when the database itself fails

POINTER = "store.json"  # in a run folder whose store is in PostgreSQL
ENV_URL = "CONTENTGEN_STORE"  # default store URL when --store is not given


def is_postgres(url: str | None) -> bool:
    return bool(url) and str(url).split(":", 1)[0] in ("postgresql", "postgres")


def open_store(url: str | os.PathLike[str], *, scope: str = "") -> Any:
    """A ``RunStore`` for ``url``. ``scope`` (PostgreSQL only) names one part of a run, e.g. ``shard-0-of-3``:
    its meta, members and ledger are its own; the answer cache is shared by every scope of the database."""
    text = os.fspath(url)
    if is_postgres(text):
        from .postgres import PostgresStore

        return PostgresStore(text, scope=scope)
    if text.startswith("sqlite:///"):
        return SqliteStore(Path(text[len("sqlite:///"):]))
    if "://" in text:
        raise StoreError(f"unknown store URL scheme {text.split('://', 1)[0]!r}", file=text,
                         hint="use sqlite:///path/run.db or postgresql://user@host:port/dbname")
    return SqliteStore(Path(text))


def redact(url: str) -> str:
    """The URL without its password (what a run folder records and messages show)."""
    if "://" not in url or "@" not in url.split("://", 1)[1].split("/", 1)[0]:
        return url
    scheme, rest = url.split("://", 1)
    auth, host = rest.split("@", 1)
    user = auth.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


def run_store_location(out: Path) -> dict[str, str] | None:
    """Where a run folder's store is ({"url", "scope"}), or None when the folder has no store."""
    out = Path(out)
    pointer = out / POINTER
    if pointer.is_file():
        try:
            data = json.loads(pointer.read_text(encoding="utf-8"))
            return {"url": str(data["url"]), "scope": str(data.get("scope", ""))}
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise StoreError(f"the store pointer is unreadable ({e})", file=str(pointer),
                             hint="write {\"url\": \"postgresql://...\", \"scope\": \"...\"} into it, or re-run "
                                  "with --store URL --restart") from None
    if (out / "run.db").exists():
        return {"url": f"sqlite:///{out / 'run.db'}", "scope": ""}
    return None


def has_run_store(out: Path) -> bool:
    return run_store_location(out) is not None


def open_run_store(out: Path, url: str | None = None, *, scope: str = "") -> Any:
    """The store of run folder ``out``: the one it records, else ``url`` (recorded for the next commands),
    else ``run.db`` in the folder."""
    out = Path(out)
    loc = run_store_location(out)
    if url is None and loc is None:
        url = os.environ.get(ENV_URL) or None
    if url is not None and is_postgres(url):
        if loc is not None and is_postgres(loc["url"]) and (redact(loc["url"]) != redact(url) or loc["scope"] != scope):
            raise StoreError(f"this run folder's store is {redact(loc['url'])} (scope {loc['scope']!r}), not "
                             f"{redact(url)} (scope {scope!r})", file=str(out / POINTER),
                             hint="re-run with the same --store and --shard, or --restart to start over there")
        store = open_store(url, scope=scope)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / (POINTER + ".tmp")
        tmp.write_text(json.dumps({"url": redact(url), "scope": scope}) + "\n", encoding="utf-8")
        os.replace(tmp, out / POINTER)
        return store
    if loc is not None and is_postgres(loc["url"]):
        # the recorded URL has no password: libpq takes it from PGPASSWORD or ~/.pgpass
        return open_store(os.environ.get(ENV_URL) if is_postgres(os.environ.get(ENV_URL)) and
                          redact(os.environ[ENV_URL]) == loc["url"] else loc["url"], scope=loc["scope"])
    if url is not None and url.startswith("sqlite:///"):
        return open_store(url)
    return SqliteStore(out / "run.db")


def read_meta(out: Path, key: str) -> str | None:
    """One meta value of a run folder's store, or None when there is no store (or it cannot be read)."""
    if not has_run_store(out):
        return None
    try:
        store = open_run_store(out)
    except StoreError:
        return None
    try:
        return store.get_meta(key)
    except Exception:  # a damaged or locked store: the caller falls back as if there were none
        return None
    finally:
        store.close()


__all__ = ["DATABASE_ERRORS", "MIGRATIONS", "ENV_URL", "POINTER", "RunStore", "SqliteStore", "has_run_store", "is_postgres",
           "open_run_store", "open_store", "read_meta", "redact", "run_store_location"]
