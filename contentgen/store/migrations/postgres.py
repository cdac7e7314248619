"""The run store's tables in PostgreSQL: the same tables and columns as SQLite's migrations, with
PostgreSQL's types and a ``scope`` column on every per-run table.

One database holds one run: its shards (scope ``shard-i-of-n``; an unsharded run is scope ``''``) each keep
their own meta, members, attempts, findings, quarantine, ledger and Batch API rows, and share the answer
cache, so a shard never pays for an answer another shard already has. Applied once each, recorded in
``migrations``, under an advisory lock so shards starting together migrate once.
"""

from __future__ import annotations

from typing import Any

P001_RUN = """
CREATE TABLE meta (scope TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (scope, key));
CREATE TABLE members (
    scope TEXT NOT NULL,
    member_key TEXT NOT NULL,
    seq BIGINT NOT NULL,
    member_id TEXT,
    state TEXT NOT NULL,
    outcome TEXT,
    segment TEXT,
    tier INTEGER,
    record TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, member_key)
);
CREATE INDEX members_seq ON members(scope, seq);
CREATE INDEX members_outcome ON members(scope, outcome);
CREATE TABLE attempts (
    scope TEXT NOT NULL,
    member_key TEXT NOT NULL,
    n INTEGER NOT NULL,
    kind TEXT NOT NULL,
    prompt TEXT,
    response TEXT,
    findings TEXT NOT NULL,
    prompt_tokens INTEGER DEFAULT 0,
    completion_tokens INTEGER DEFAULT 0,
    cached INTEGER DEFAULT 0,
    PRIMARY KEY (scope, member_key, n)
);
CREATE TABLE findings (
    scope TEXT NOT NULL,
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
CREATE INDEX findings_rule ON findings(scope, rule_id);
CREATE INDEX findings_member ON findings(scope, member_key);
CREATE TABLE quarantine (
    id BIGSERIAL PRIMARY KEY,
    scope TEXT NOT NULL,
    file TEXT, line INTEGER, field TEXT, reason TEXT, member_id TEXT, kind TEXT,
    UNIQUE (scope, file, line, field)
);
CREATE TABLE cache (
    key TEXT PRIMARY KEY,
    response TEXT NOT NULL,
    finish_reason TEXT,
    prompt_tokens INTEGER DEFAULT 0,
    completion_tokens INTEGER DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE decisions (
    id BIGSERIAL PRIMARY KEY,
    scope TEXT NOT NULL,
    member_key TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    message_hash TEXT,
    message TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    basis TEXT, draft TEXT, verdict TEXT, findings TEXT, overrides TEXT
);
CREATE INDEX decisions_member ON decisions(scope, member_key, id);
CREATE TABLE batch_files (
    scope TEXT NOT NULL, file TEXT NOT NULL, requests INTEGER NOT NULL, tokens BIGINT NOT NULL,
    round INTEGER NOT NULL DEFAULT 0, file_id TEXT, batch_id TEXT, status TEXT NOT NULL,
    joined INTEGER NOT NULL DEFAULT 0, answered INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0, errors TEXT, updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (scope, file)
);
CREATE TABLE batch_items (
    scope TEXT NOT NULL, key TEXT NOT NULL, file TEXT NOT NULL, tokens BIGINT NOT NULL,
    state TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0, reason TEXT,
    PRIMARY KEY (scope, key)
);
CREATE INDEX batch_items_file ON batch_items(scope, file);
CREATE TABLE batch_failures (
    id BIGSERIAL PRIMARY KEY, scope TEXT NOT NULL, key TEXT NOT NULL, file TEXT NOT NULL, batch_id TEXT,
    code TEXT, message TEXT, retryable INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL
);
CREATE INDEX batch_failures_key ON batch_failures(scope, key, id);
CREATE TABLE ledger (
    id BIGSERIAL PRIMARY KEY,
    scope TEXT NOT NULL,
    key TEXT,
    requests INTEGER NOT NULL DEFAULT 1,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    process TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX ledger_scope ON ledger(scope);
"""

P002_BUDGET = """
CREATE TABLE budget (
    key TEXT PRIMARY KEY, requests DOUBLE PRECISION, tokens DOUBLE PRECISION, updated DOUBLE PRECISION,
    paused_until DOUBLE PRECISION
);
"""


def _each(sql: str):
    def apply(cur: Any) -> None:
        for stmt in sql.split(";"):
            if stmt.strip():
                cur.execute(stmt)
    return apply


MIGRATIONS = [("p001_run", _each(P001_RUN)), ("p002_budget", _each(P002_BUDGET))]

# the tables whose rows belong to one scope (a shard of the run), emptied by --restart of that scope
SCOPED_TABLES = ("meta", "members", "attempts", "findings", "quarantine", "decisions", "batch_files", "batch_items",
                 "batch_failures", "ledger")
