"""The studio's run-store migrations.

Registered in ``store.migrations.MIGRATIONS`` (applied once each, recorded in the
``migrations`` table like every other migration):

- ``m002_studio``: saved prompt variants, preview results, queue indexes.
- ``m005_studio_review``: what a decision was bound to (the reviewer's words,
  the gates' verdict, the error findings and the overrides of failing rules),
  server-side sessions, sign-in failures, and the queue aggregates the run
  keeps up to date as it writes (``queue_index``), back-filled from the rows
  already in the store.
"""

from __future__ import annotations

import sqlite3


def _each(db: sqlite3.Connection, sql: str) -> None:
    # statement by statement: executescript() would COMMIT the migration's open transaction
    for stmt in sql.split(";"):
        if stmt.strip():
            db.execute(stmt)


_M002 = """
        CREATE TABLE IF NOT EXISTS studio_variants (
            id TEXT PRIMARY KEY,          -- content hash of (name-independent) file overrides
            name TEXT NOT NULL,
            parent TEXT,
            files TEXT NOT NULL,          -- JSON {template file: full text}, overrides on the campaign's prompts
            created_by TEXT,
            created_at REAL NOT NULL
        );
        CREATE TABLE IF NOT EXISTS studio_comparisons (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            label TEXT,
            created_by TEXT,
            created_at REAL NOT NULL,
            variant_ids TEXT NOT NULL,    -- JSON list
            member_ids TEXT NOT NULL      -- JSON list
        );
        CREATE TABLE IF NOT EXISTS studio_previews (
            comparison_id INTEGER NOT NULL,
            variant_id TEXT NOT NULL,
            member_id TEXT NOT NULL,
            outcome TEXT,
            result TEXT NOT NULL,         -- JSON: record, attempts, findings, prompt, error
            prompt_tokens INTEGER DEFAULT 0,
            completion_tokens INTEGER DEFAULT 0,
            cost_usd REAL,
            created_at REAL NOT NULL,
            PRIMARY KEY (comparison_id, variant_id, member_id)
        );
        CREATE INDEX IF NOT EXISTS studio_members_outcome_seq ON members(outcome, seq);
        CREATE INDEX IF NOT EXISTS studio_members_segment ON members(segment, seq);
        CREATE INDEX IF NOT EXISTS studio_members_tier ON members(tier, seq);
        CREATE INDEX IF NOT EXISTS studio_members_id ON members(member_id);
        CREATE INDEX IF NOT EXISTS studio_findings_rule_member ON findings(rule_id, member_key);
        CREATE INDEX IF NOT EXISTS studio_findings_gate_member ON findings(gate, member_key);
        CREATE INDEX IF NOT EXISTS studio_decisions_member ON decisions(member_key, id);
"""


def m002_studio(db: sqlite3.Connection) -> None:
    _each(db, _M002)


_M003 = """
        ALTER TABLE decisions ADD COLUMN basis TEXT;       -- where the reviewer's words came from (attempt:N, ...)
        ALTER TABLE decisions ADD COLUMN draft TEXT;       -- the reviewer's words (JSON), engine lines excluded
        ALTER TABLE decisions ADD COLUMN verdict TEXT;     -- the gates' verdict on the decided message, then
        ALTER TABLE decisions ADD COLUMN findings TEXT;    -- its error findings (JSON)
        ALTER TABLE decisions ADD COLUMN overrides TEXT;   -- JSON [{rule_id, reason}]: failing rules approved over

        CREATE TABLE studio_sessions (
            token_hash TEXT PRIMARY KEY,  -- SHA-256 of the cookie's token: the store never holds a usable cookie
            username TEXT NOT NULL,
            csrf TEXT NOT NULL,
            password_fp TEXT NOT NULL,    -- fingerprint of the password hash at sign-in: a new password ends it
            created_at REAL NOT NULL,
            last_seen REAL NOT NULL,
            revoked_at REAL,
            revoked_why TEXT,
            flash TEXT,                   -- one message (and form state) for the next page (post/redirect/get)
            client TEXT,
            user_agent TEXT
        );
        CREATE INDEX studio_sessions_user ON studio_sessions(username, revoked_at);

        CREATE TABLE studio_login_failures (
            subject TEXT PRIMARY KEY,     -- 'user:<name>' (known or not) or 'ip:<address>'
            failures INTEGER NOT NULL,
            first_at REAL NOT NULL,
            last_at REAL NOT NULL,
            locked_until REAL
        );

        CREATE TABLE studio_queue (
            member_key TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            member_id TEXT NOT NULL,
            outcome TEXT NOT NULL,
            segment TEXT NOT NULL,
            tier INTEGER NOT NULL,
            channel TEXT NOT NULL,
            send INTEGER NOT NULL,        -- the run's own send flag
            subject TEXT NOT NULL,        -- subject, title or SMS text, for the list
            n_errors INTEGER NOT NULL,    -- error findings over every attempt
            gates_any INTEGER NOT NULL,   -- bit per gate with any finding (queue_index.GATE_BITS)
            gates_err INTEGER NOT NULL,   -- bit per gate with an error finding
            decided INTEGER NOT NULL,     -- 1 once approved or rejected by a reviewer
            decision TEXT NOT NULL,       -- '' | approve | override | reject (the latest)
            sends TEXT NOT NULL           -- what the export sends now: model | fallback | reviewed | override | nothing
        );
        CREATE INDEX studio_queue_seq ON studio_queue(seq, outcome, segment, tier, decided, n_errors, gates_any, gates_err);
        CREATE INDEX studio_queue_member ON studio_queue(member_id, seq, outcome, segment, tier, decided, n_errors,
                                                         gates_any, gates_err);
        CREATE INDEX studio_queue_errors ON studio_queue(n_errors, seq, outcome, segment, tier, decided, gates_any,
                                                         gates_err);
        CREATE INDEX studio_queue_filter ON studio_queue(outcome, segment, tier, decided, seq);

        CREATE TABLE studio_queue_rules (
            member_key TEXT NOT NULL,
            rule_id TEXT NOT NULL,
            gate TEXT NOT NULL,
            severity INTEGER NOT NULL,    -- most serious over the attempts: 0 error, 1 warning, 2 info
            seq INTEGER NOT NULL,
            member_id TEXT NOT NULL,
            n_errors INTEGER NOT NULL,
            outcome TEXT NOT NULL,
            segment TEXT NOT NULL,
            tier INTEGER NOT NULL,
            decided INTEGER NOT NULL,
            PRIMARY KEY (member_key, rule_id)
        );
        CREATE INDEX studio_rules_seq ON studio_queue_rules(rule_id, seq, outcome, segment, tier, decided, severity);
        CREATE INDEX studio_rules_member ON studio_queue_rules(rule_id, member_id, seq, outcome, segment, tier,
                                                               decided, severity);
        CREATE INDEX studio_rules_errors ON studio_queue_rules(rule_id, n_errors, seq, outcome, segment, tier,
                                                               decided, severity);

        CREATE TABLE studio_rules (
            rule_id TEXT PRIMARY KEY,
            gate TEXT NOT NULL
        );

        CREATE TABLE studio_member_rows (
            member_id TEXT PRIMARY KEY,   -- a queued member's validated input row (JSON), for rebuilding its plan
            row TEXT NOT NULL
        );

        CREATE TABLE studio_counts (
            dim TEXT NOT NULL,            -- all | err | rule | rule_err | gate | gate_err | decision
            value TEXT NOT NULL,          -- '' | rule id | gate | action
            outcome TEXT NOT NULL,
            segment TEXT NOT NULL,
            tier INTEGER NOT NULL,
            decided INTEGER NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (dim, value, outcome, segment, tier, decided)
        )
"""


def m005_studio_review(db: sqlite3.Connection) -> None:
    from ..queue_index import rebuild

    _each(db, _M003)
    rebuild(db)
