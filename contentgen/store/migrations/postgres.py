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


P003_STUDIO = """
CREATE TABLE studio_variants (
    id TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL, parent TEXT, files TEXT NOT NULL, created_by TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE studio_comparisons (
    id BIGSERIAL PRIMARY KEY, label TEXT, created_by TEXT, created_at DOUBLE PRECISION NOT NULL,
    variant_ids TEXT NOT NULL, member_ids TEXT NOT NULL
);
CREATE TABLE studio_previews (
    comparison_id BIGINT NOT NULL, variant_id TEXT NOT NULL, member_id TEXT NOT NULL, outcome TEXT,
    result TEXT NOT NULL, prompt_tokens INTEGER DEFAULT 0, completion_tokens INTEGER DEFAULT 0,
    cost_usd DOUBLE PRECISION, created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (comparison_id, variant_id, member_id)
);
CREATE TABLE studio_sessions (
    token_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL, password_fp TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL, revoked_at DOUBLE PRECISION,
    revoked_why TEXT, flash TEXT, client TEXT, user_agent TEXT
);
CREATE INDEX studio_sessions_user ON studio_sessions(username, revoked_at);
CREATE TABLE studio_login_failures (
    subject TEXT PRIMARY KEY, failures INTEGER NOT NULL, first_at DOUBLE PRECISION NOT NULL,
    last_at DOUBLE PRECISION NOT NULL, locked_until DOUBLE PRECISION
);
CREATE TABLE studio_queue (
    scope TEXT NOT NULL,
    member_key TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    member_id TEXT COLLATE "C" NOT NULL,
    outcome TEXT NOT NULL,
    segment TEXT COLLATE "C" NOT NULL,
    tier INTEGER NOT NULL,
    channel TEXT NOT NULL,
    send INTEGER NOT NULL,
    subject TEXT NOT NULL,
    n_errors INTEGER NOT NULL,
    gates_any INTEGER NOT NULL,
    gates_err INTEGER NOT NULL,
    decided INTEGER NOT NULL,
    decision TEXT NOT NULL,
    sends TEXT NOT NULL,
    PRIMARY KEY (scope, member_key)
);
CREATE INDEX studio_queue_seq ON studio_queue(seq, scope);
CREATE INDEX studio_queue_member ON studio_queue(member_id, seq);
CREATE INDEX studio_queue_errors ON studio_queue(n_errors, seq);
CREATE INDEX studio_queue_filter ON studio_queue(outcome, segment, tier, decided, seq);
CREATE TABLE studio_queue_rules (
    scope TEXT NOT NULL,
    member_key TEXT COLLATE "C" NOT NULL,
    rule_id TEXT COLLATE "C" NOT NULL,
    gate TEXT NOT NULL,
    severity INTEGER NOT NULL,
    seq BIGINT NOT NULL,
    member_id TEXT COLLATE "C" NOT NULL,
    n_errors INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    segment TEXT COLLATE "C" NOT NULL,
    tier INTEGER NOT NULL,
    decided INTEGER NOT NULL,
    PRIMARY KEY (scope, member_key, rule_id)
);
CREATE INDEX studio_rules_seq ON studio_queue_rules(rule_id, seq);
CREATE INDEX studio_rules_member ON studio_queue_rules(rule_id, member_id, seq);
CREATE INDEX studio_rules_errors ON studio_queue_rules(rule_id, n_errors, seq);
CREATE TABLE studio_rules (rule_id TEXT COLLATE "C" PRIMARY KEY, gate TEXT NOT NULL);
CREATE TABLE studio_member_rows (member_id TEXT PRIMARY KEY, row TEXT NOT NULL);
CREATE TABLE studio_counts (
    scope TEXT NOT NULL,
    dim TEXT NOT NULL,
    value TEXT COLLATE "C" NOT NULL,
    outcome TEXT NOT NULL,
    segment TEXT COLLATE "C" NOT NULL,
    tier INTEGER NOT NULL,
    decided INTEGER NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (scope, dim, value, outcome, segment, tier, decided)
);
CREATE INDEX studio_members_updated ON members(updated_at);
"""


def _each(sql: str):
    def apply(cur: Any) -> None:
        for stmt in sql.split(";"):
            if stmt.strip():
                cur.execute(stmt)
    return apply


def p003_studio(cur: Any) -> None:
    """The studio's tables (SQLite's m002_studio and m005_studio_review): sessions, sign-in failures,
    variants, comparisons, the member index, and the queue aggregates per scope, back-filled from the
    members already stored (the same replay as ``queue_index.rebuild``)."""
    from ..dialect import PgConn
    from ..queue_index import rebuild

    _each(P003_STUDIO)(cur)
    scopes = [r[0] for r in cur.execute("SELECT DISTINCT scope FROM members").fetchall()]
    if scopes:
        rebuild(PgConn(cur.connection, scopes=scopes))


MIGRATIONS = [("p001_run", _each(P001_RUN)), ("p002_budget", _each(P002_BUDGET)), ("p003_studio", p003_studio)]

# the tables whose rows belong to one scope (a shard of the run), emptied by --restart of that scope
SCOPED_TABLES = ("meta", "members", "attempts", "findings", "quarantine", "decisions", "batch_files", "batch_items",
                 "batch_failures", "ledger", "studio_queue", "studio_queue_rules", "studio_counts")
