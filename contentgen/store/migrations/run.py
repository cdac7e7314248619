"""The run's own tables in SQLite: members, attempts, findings, quarantine, cache, decisions, the Batch API
ledger and the spend ledger (the studio's tables are in ``studio``)."""

from __future__ import annotations

import json
import sqlite3
import time


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





def m003_batch_ledger(db: sqlite3.Connection) -> None:
    """The Batch API ledger: request files, their batches, and every request's state and failures."""
    for stmt in (
        """CREATE TABLE batch_files (file TEXT PRIMARY KEY, requests INTEGER NOT NULL, tokens INTEGER NOT NULL,
               round INTEGER NOT NULL DEFAULT 0, file_id TEXT, batch_id TEXT, status TEXT NOT NULL,
               joined INTEGER NOT NULL DEFAULT 0, answered INTEGER NOT NULL DEFAULT 0,
               failed INTEGER NOT NULL DEFAULT 0, errors TEXT, updated_at REAL NOT NULL)""",
        """CREATE TABLE batch_items (key TEXT PRIMARY KEY, file TEXT NOT NULL, tokens INTEGER NOT NULL,
               state TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0, reason TEXT)""",
        "CREATE INDEX batch_items_file ON batch_items(file)",
        """CREATE TABLE batch_failures (key TEXT NOT NULL, file TEXT NOT NULL, batch_id TEXT, code TEXT,
               message TEXT, retryable INTEGER NOT NULL, at REAL NOT NULL)""",
    ):
        db.execute(stmt)


def m004_ledger(db: sqlite3.Connection) -> None:
    """One row per answer the provider returned (paid), written as it arrives; totals sum every process."""
    db.execute("""
        CREATE TABLE ledger (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT,
            requests INTEGER NOT NULL DEFAULT 1,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            process TEXT,                 -- which process (pid:random) received the answer
            created_at REAL NOT NULL
        )""")
    # a store written before the ledger kept one running total in meta: carry it over as one row
    row = db.execute("SELECT value FROM meta WHERE key='usage'").fetchone()
    if row:
        u = json.loads(row[0])
        cost = db.execute("SELECT value FROM meta WHERE key='cost_usd'").fetchone()
        db.execute("INSERT INTO ledger (key, requests, prompt_tokens, completion_tokens, cached_tokens, cost_usd, "
                   "process, created_at) VALUES ('(before the ledger)', ?, ?, ?, ?, ?, 'before the ledger', ?)",
                   (u.get("requests", 0), u.get("prompt_tokens", 0), u.get("completion_tokens", 0),
                    u.get("cached_tokens", 0), float(cost[0]) if cost else 0.0, time.time()))
