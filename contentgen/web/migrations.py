"""The studio's run-store migration: saved prompt variants, preview results, queue indexes.

Registered in ``store.MIGRATIONS`` as ``m002_studio`` (applied once, recorded in
the ``migrations`` table like every other migration).
"""

from __future__ import annotations

import sqlite3


_SQL = """
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
    # statement by statement: executescript() would COMMIT the migration's open transaction
    for stmt in _SQL.split(";"):
        if stmt.strip():
            db.execute(stmt)
