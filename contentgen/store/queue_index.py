"""The review queue's aggregates, kept as the run writes them, and the queries that read them.

Three tables (``m005_studio_review``):

- ``studio_queue``: one row per member: outcome, segment, tier, channel, the
  subject line, error count, which gates fired (bit masks), the reviewer's
  latest decision and what the export sends now;
- ``studio_queue_rules``: one row per (member, rule that fired in any
  attempt), with the member's filter and sort columns copied in, so a rule
  filter walks one index range in page order;
- ``studio_counts``: member counts per (dimension, value, outcome, segment,
  tier, decided), so totals, filter menus and the dashboard are sums over a
  few hundred rows instead of scans over the run.

``on_save`` is called by ``SqliteStore.save_members`` inside the run's own
transaction (a re-saved member's old contribution is taken out first);
``on_decision`` by the decision writer, in the decision's transaction;
``rebuild`` recomputes everything from ``members``, ``findings`` and
``decisions`` (the migration's back-fill; tests compare it with the
incremental path). Pages are keyset-paginated: a cursor is the last row's
(sort value, seq), so page 10,000 costs what page 1 costs.

SQL here is plain (row values, ``ON CONFLICT``, integer ``&``) and runs on both backends through a
``dialect.Conn`` (``?`` placeholders; on PostgreSQL each row carries its shard's scope, reads cover
every scope of the run). Only SQLite's back-fill is its own SQL (``json_extract``, a temp table); on
PostgreSQL ``rebuild`` replays the members and decisions through ``on_save`` and ``on_decision``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .dialect import Conn, and_, conn_of

GATE_BITS = {"schema": 1, "facts": 2, "brand": 4, "compliance": 8}
OTHER_BIT = 16
SEVERITY = {"error": 0, "warning": 1, "info": 2}
SEVERITY_NAMES = ("error", "warning", "info")
QUEUE_OUTCOMES = ("review", "rejected", "fallback", "repaired")
#: what the export sends now, in words for the queue
SENDS = {"model": "model text", "fallback": "fallback", "reviewed": "reviewer-approved text",
         "override": "approved over failing rules", "nothing": "nothing"}

_QCOLS = ("member_key", "seq", "member_id", "outcome", "segment", "tier", "channel", "send", "subject", "n_errors",
          "gates_any", "gates_err", "decided", "decision", "sends")


def gate_bit(gate: str) -> int:
    return GATE_BITS.get(gate, OTHER_BIT)


def gates_of(mask: int) -> list[str]:
    out = [g for g, b in GATE_BITS.items() if mask & b]
    return out + (["other"] if mask & OTHER_BIT else [])


def sends_of(outcome: str, send: bool, decision: str) -> str:
    """What the export sends for this member now (export.apply_decision's rules)."""
    if decision == "reject":
        return "nothing"
    if decision in ("approve", "override"):
        return "override" if decision == "override" else "reviewed"
    if not send:
        return "nothing"
    return "fallback" if outcome in ("fallback", "holdout") else "model"


def subject_of(rec: dict[str, Any]) -> str:
    msg = rec.get("message") or {}
    return str(msg.get("subject") or msg.get("title") or msg.get("text") or "")[:200]


@dataclass
class MemberState:
    member_key: str
    seq: int
    member_id: str
    outcome: str
    segment: str
    tier: int
    channel: str
    send: int
    subject: str
    n_errors: int
    gates_any: int
    gates_err: int
    decided: int = 0
    decision: str = ""
    sends: str = "nothing"
    rules: dict[str, tuple[str, int]] = field(default_factory=dict)  # rule id -> (gate, severity)

    def row(self) -> tuple:
        return tuple(getattr(self, c) for c in _QCOLS)

    def contributions(self) -> Iterable[tuple[str, str]]:
        yield "all", ""
        if self.n_errors:
            yield "err", ""
        for rule, (_gate, sev) in self.rules.items():
            yield "rule", rule
            if sev == 0:
                yield "rule_err", rule
        for g in gates_of(self.gates_any):
            yield "gate", g
        for g in gates_of(self.gates_err):
            yield "gate_err", g


def state_from_row(r: dict[str, Any], decision: str = "") -> MemberState:
    """A saved member (``save_members``'s row) as queue state."""
    rec = r.get("record") or {}
    rules: dict[str, tuple[str, int]] = {}
    n_err = any_mask = err_mask = 0
    for a in r.get("attempts") or ():
        for f in a.get("findings") or ():
            sev = SEVERITY.get(f.get("severity"), 2)
            gate = str(f.get("gate") or "")
            bit = gate_bit(gate)
            any_mask |= bit
            if sev == 0:
                n_err += 1
                err_mask |= bit
            rid = str(f["rule_id"])
            old = rules.get(rid)
            rules[rid] = (min(gate, old[0]) if old else gate, min(sev, old[1]) if old else sev)
    outcome = str(r.get("outcome") or "")
    send = 1 if rec.get("send") else 0
    return MemberState(member_key=r["member_key"], seq=int(r["seq"]), member_id=str(r.get("member_id") or r["member_key"]),
                       outcome=outcome, segment=str(r.get("segment") or ""), tier=int(r.get("tier") or 0),
                       channel=str(rec.get("channel") or ""), send=send, subject=subject_of(rec), n_errors=n_err,
                       gates_any=any_mask, gates_err=err_mask, decided=1 if decision else 0, decision=decision,
                       sends=sends_of(outcome, bool(send), decision), rules=rules)


def _in(col: str, n: int) -> str:
    return f"{col} IN ({','.join('?' * n)})"


def load_states(db: Any, keys: Sequence[str]) -> dict[str, MemberState]:
    """Queue state of ``keys`` in the write scope."""
    c = conn_of(db)
    w, wa = c.wc()
    out: dict[str, MemberState] = {}
    for i in range(0, len(keys), 500):
        part = list(keys[i:i + 500])
        where, args = and_((_in("member_key", len(part)), part), (w, wa))
        for row in c.execute(f"SELECT {', '.join(_QCOLS)} FROM studio_queue WHERE {where}", args):
            out[row[0]] = MemberState(*row)
        for key, rule, gate, sev in c.execute(
                f"SELECT member_key, rule_id, gate, severity FROM studio_queue_rules WHERE {where}", args):
            out[key].rules[rule] = (gate, sev)
    return out


def _bump(deltas: Counter, st: MemberState, sign: int) -> None:
    for dim, value in st.contributions():
        deltas[(dim, value, st.outcome, st.segment, st.tier, st.decided)] += sign


_DIMS = ("dim", "value", "outcome", "segment", "tier", "decided")
_QTYPES = ("text", "bigint", "text", "text", "text", "integer", "text", "integer", "text", "integer", "integer",
           "integer", "integer", "text", "text")  # _QCOLS' PostgreSQL types
_RCOLS = ("member_key", "rule_id", "gate", "severity", "seq", "member_id", "n_errors", "outcome", "segment", "tier",
          "decided")
_RTYPES = ("text", "text", "text", "integer", "bigint", "text", "integer", "text", "text", "integer", "integer")


def _sc(c: Conn, cols: Sequence[str], types: Sequence[str]) -> tuple[list[str], list[str]]:
    """Column names and types with the scope column in front where rows carry one."""
    return (["scope", *cols], ["text", *types]) if c.scol else (list(cols), list(types))


def _apply(c: Conn, deltas: Counter) -> None:
    rows = [c.sval((*k, n)) for k, n in deltas.items() if n]
    cols, types = _sc(c, (*_DIMS, "n"), ("text", "text", "text", "text", "integer", "integer", "integer"))
    c.insert_rows("studio_counts", cols, types, rows,
                  f"ON CONFLICT ({c.scol}{', '.join(_DIMS)}) DO UPDATE SET n = studio_counts.n + excluded.n")


def _rule_rows(c: Conn, st: MemberState) -> list[tuple]:
    return [c.sval((st.member_key, rule, gate, sev, st.seq, st.member_id, st.n_errors, st.outcome, st.segment,
                    st.tier, st.decided)) for rule, (gate, sev) in st.rules.items()]


def on_save(db: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Keep the aggregates true for members the run just saved (call inside the save's transaction; on
    PostgreSQL with the saving shard's scope as the write scope)."""
    if not rows:
        return
    c = conn_of(db)
    c.lock_scope()
    old = load_states(c, list(dict.fromkeys(r["member_key"] for r in rows)))
    deltas: Counter = Counter()
    drop: list[tuple] = []
    states: dict[str, MemberState] = {}
    for r in rows:
        key = r["member_key"]
        prev = states.get(key) or old.get(key)
        if prev is not None:
            _bump(deltas, prev, -1)
            if key in old and key not in states:
                drop.append(c.sval((key,)))
        st = state_from_row(r, prev.decision if prev else "")
        _bump(deltas, st, +1)
        states[key] = st
    if drop:
        c.executemany(f"DELETE FROM studio_queue_rules WHERE {c.scol and 'scope = ? AND '}member_key = ?", drop)
    cols, types = _sc(c, _QCOLS, _QTYPES)
    c.insert_rows("studio_queue", cols, types, [c.sval(st.row()) for st in states.values()],
                  f"ON CONFLICT ({c.scol}member_key) DO UPDATE SET "
                  + ", ".join(f"{col} = excluded.{col}" for col in _QCOLS[1:]))
    cols, types = _sc(c, _RCOLS, _RTYPES)
    c.insert_rows("studio_queue_rules", cols, types, [x for st in states.values() for x in _rule_rows(c, st)])
    rules = {(rule, gate) for st in states.values() for rule, (gate, _s) in st.rules.items()}
    if rules:
        c.executemany("INSERT INTO studio_rules (rule_id, gate) VALUES (?, ?) ON CONFLICT (rule_id) DO NOTHING",
                      sorted(rules))
    _apply(c, deltas)


def decision_state(action: str, overrides: Sequence[Any] | None) -> str:
    if action == "reject":
        return "reject"
    return "override" if overrides else "approve"


def on_decision(db: Any, member_key: str, action: str, overrides: Sequence[Any] | None) -> None:
    """Count the decision; an approve/reject moves the member to 'decided' and changes what it sends
    (call inside the decision's transaction; on PostgreSQL with the member's scope as the write scope)."""
    c = conn_of(db)
    c.lock_scope()
    deltas: Counter = Counter({("decision", action, "", "", 0, 0): 1})
    if action in ("approve", "reject"):
        st = load_states(c, [member_key]).get(member_key)
        if st is not None:
            _bump(deltas, st, -1)
            st.decided, st.decision = 1, decision_state(action, overrides)
            st.sends = sends_of(st.outcome, bool(st.send), st.decision)
            _bump(deltas, st, +1)
            w, wa = c.wc()
            tail = f" AND {w}" if w else ""
            c.execute(f"UPDATE studio_queue SET decided = 1, decision = ?, sends = ? WHERE member_key = ?{tail}",
                      (st.decision, st.sends, member_key, *wa))
            c.execute(f"UPDATE studio_queue_rules SET decided = 1 WHERE member_key = ?{tail}", (member_key, *wa))
    _apply(c, deltas)


# ------------------------------------------------------------------------------------------ back-fill

_SENDS_SQL = ("CASE WHEN decision = 'reject' THEN 'nothing' WHEN decision = 'override' THEN 'override' "
              "WHEN decision = 'approve' THEN 'reviewed' WHEN send = 0 THEN 'nothing' "
              "WHEN outcome IN ('fallback', 'holdout') THEN 'fallback' ELSE 'model' END")


def rebuild(db: Any) -> None:
    """Recompute every aggregate from members, findings and decisions (the migration's back-fill; on
    PostgreSQL for each of the connection's scopes)."""
    c = conn_of(db)
    if c.pg:
        for scope in c.scopes:
            _rebuild_replay(c.at(scope))
        return
    db = c.raw
    for t in ("studio_queue", "studio_queue_rules", "studio_rules", "studio_counts"):
        db.execute(f"DELETE FROM {t}")
    known = " ".join(f"WHEN '{g}' THEN {b}" for g, b in GATE_BITS.items())
    bit = f"(CASE gate {known} ELSE {OTHER_BIT} END)"
    any_bits = " + ".join(f"MAX(CASE WHEN {bit} = {b} THEN {b} ELSE 0 END)" for b in (*GATE_BITS.values(), OTHER_BIT))
    err_bits = " + ".join(f"MAX(CASE WHEN {bit} = {b} AND severity = 'error' THEN {b} ELSE 0 END)"
                          for b in (*GATE_BITS.values(), OTHER_BIT))
    db.execute("DROP TABLE IF EXISTS temp.studio_agg")
    db.execute(f"CREATE TEMP TABLE studio_agg AS SELECT member_key, SUM(CASE WHEN severity = 'error' THEN 1 ELSE 0 END) "
               f"AS n_errors, {any_bits} AS gates_any, {err_bits} AS gates_err FROM findings GROUP BY member_key")
    db.execute("CREATE INDEX temp.studio_agg_key ON studio_agg(member_key)")
    db.execute(
        "INSERT INTO studio_queue (member_key, seq, member_id, outcome, segment, tier, channel, send, subject, "
        "n_errors, gates_any, gates_err, decided, decision, sends) "
        "SELECT m.member_key, m.seq, COALESCE(m.member_id, m.member_key), COALESCE(m.outcome, ''), "
        "COALESCE(m.segment, ''), COALESCE(m.tier, 0), COALESCE(json_extract(m.record, '$.channel'), ''), "
        "CASE WHEN json_extract(m.record, '$.send') THEN 1 ELSE 0 END, "
        "substr(COALESCE(json_extract(m.record, '$.message.subject'), json_extract(m.record, '$.message.title'), "
        "json_extract(m.record, '$.message.text'), ''), 1, 200), "
        "COALESCE(a.n_errors, 0), COALESCE(a.gates_any, 0), COALESCE(a.gates_err, 0), 0, '', '' "
        "FROM members m LEFT JOIN studio_agg a ON a.member_key = m.member_key")
    db.execute("DROP TABLE temp.studio_agg")
    db.execute(
        "UPDATE studio_queue SET decision = (SELECT CASE WHEN d.action = 'reject' THEN 'reject' "
        "WHEN d.overrides IS NOT NULL AND d.overrides NOT IN ('', '[]') THEN 'override' ELSE 'approve' END "
        "FROM decisions d WHERE d.member_key = studio_queue.member_key AND d.action IN ('approve', 'reject') "
        "ORDER BY d.id DESC LIMIT 1) "
        "WHERE member_key IN (SELECT member_key FROM decisions WHERE action IN ('approve', 'reject'))")
    db.execute(f"UPDATE studio_queue SET decided = CASE WHEN decision = '' THEN 0 ELSE 1 END, sends = {_SENDS_SQL}")
    db.execute(
        "INSERT INTO studio_queue_rules (member_key, rule_id, gate, severity, seq, member_id, n_errors, outcome, "
        "segment, tier, decided) "
        "SELECT f.member_key, f.rule_id, MIN(f.gate), "
        "MIN(CASE f.severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END), "
        "q.seq, q.member_id, q.n_errors, q.outcome, q.segment, q.tier, q.decided "
        "FROM findings f JOIN studio_queue q ON q.member_key = f.member_key GROUP BY f.member_key, f.rule_id")
    db.execute("INSERT INTO studio_rules (rule_id, gate) SELECT rule_id, MIN(gate) FROM studio_queue_rules "
               "GROUP BY rule_id")
    dims = "outcome, segment, tier, decided"
    db.execute(f"INSERT INTO studio_counts SELECT 'all', '', {dims}, COUNT(*) FROM studio_queue GROUP BY {dims}")
    db.execute(f"INSERT INTO studio_counts SELECT 'err', '', {dims}, COUNT(*) FROM studio_queue WHERE n_errors > 0 "
               f"GROUP BY {dims}")
    db.execute(f"INSERT INTO studio_counts SELECT 'rule', rule_id, {dims}, COUNT(*) FROM studio_queue_rules "
               f"GROUP BY rule_id, {dims}")
    db.execute(f"INSERT INTO studio_counts SELECT 'rule_err', rule_id, {dims}, COUNT(*) FROM studio_queue_rules "
               f"WHERE severity = 0 GROUP BY rule_id, {dims}")
    for g, b in (*GATE_BITS.items(), ("other", OTHER_BIT)):
        for dim, col in (("gate", "gates_any"), ("gate_err", "gates_err")):
            db.execute(f"INSERT INTO studio_counts SELECT '{dim}', '{g}', {dims}, COUNT(*) FROM studio_queue "
                       f"WHERE ({col} & {b}) != 0 GROUP BY {dims}")
    db.execute("INSERT INTO studio_counts SELECT 'decision', action, '', '', 0, 0, COUNT(*) FROM decisions "
               "GROUP BY action")


def _rebuild_replay(c: Conn) -> None:
    """The write scope's aggregates recomputed by replaying its members (in input order) through ``on_save``
    and its decisions (in order) through ``on_decision``: the incremental path, from nothing."""
    w, wa = c.wc()
    for t in ("studio_queue", "studio_queue_rules", "studio_counts"):
        c.execute(f"DELETE FROM {t} WHERE {w}", wa)
    after = -1
    while True:
        members = c.execute(f"SELECT member_key, seq, member_id, outcome, segment, tier, record FROM members "
                            f"WHERE {w} AND seq > ? ORDER BY seq LIMIT 2000", (*wa, after)).fetchall()
        if not members:
            break
        after = members[-1][1]
        keys = [m[0] for m in members]
        findings: dict[str, dict[int, list[dict[str, Any]]]] = {}
        for key, n, rule, gate, sev in c.execute(f"SELECT member_key, attempt, rule_id, gate, severity FROM findings "
                                                  f"WHERE {w} AND member_key = ANY(?)", (*wa, keys)):
            findings.setdefault(key, {}).setdefault(n, []).append({"rule_id": rule, "gate": gate, "severity": sev})
        on_save(c, [{"member_key": k, "seq": seq, "member_id": mid, "outcome": o, "segment": seg, "tier": tier,
                     "record": json.loads(rec), "attempts": [{"findings": f} for f in findings.get(k, {}).values()]}
                    for k, seq, mid, o, seg, tier, rec in members])
    for key, action, overrides in c.execute(f"SELECT member_key, action, overrides FROM decisions WHERE {w} "
                                            f"ORDER BY id", wa).fetchall():
        on_decision(c, key, action, json.loads(overrides) if overrides else None)


def snapshot(db: Any) -> dict[str, Any]:
    """Every aggregate, normalised (zero counts dropped), for comparing the incremental path with ``rebuild``."""
    c = conn_of(db)
    s, sa = c.sc()
    w = f" WHERE {s}" if s else ""
    a = f" AND {s}" if s else ""
    return {
        "queue": sorted(tuple(r) for r in c.execute(f"SELECT {', '.join(_QCOLS)} FROM studio_queue{w}", sa)),
        "rules": sorted(tuple(r) for r in c.execute(
            "SELECT member_key, rule_id, gate, severity, seq, member_id, n_errors, outcome, segment, tier, decided "
            f"FROM studio_queue_rules{w}", sa)),
        "rule_gates": sorted(tuple(r) for r in c.execute(
            f"SELECT rule_id, gate FROM studio_rules WHERE rule_id IN (SELECT rule_id FROM studio_queue_rules{w})",
            sa)),
        "counts": sorted(tuple(r) for r in c.execute(
            f"SELECT dim, value, outcome, segment, tier, decided, n FROM studio_counts WHERE n != 0{a}", sa)),
    }


# ------------------------------------------------------------------------------------------ reading


@dataclass
class Filter:
    """What a queue page shows (parsed and validated by ``queue.QueueFilter``)."""

    outcomes: tuple[str, ...] = QUEUE_OUTCOMES
    rule: str = ""
    gate: str = ""
    severity: str = ""  # "" | error
    segment: str = ""
    tier: int | None = None
    status: str = ""  # "" | open | decided
    q: str = ""
    sort: str = "seq"  # seq | member | errors
    order: str = "asc"


SORT_COLUMNS = {"seq": None, "member": "member_id", "errors": "n_errors"}
COUNT_CAP = 10_000


def _conds(c: Conn, f: Filter, t: str, *, planner_hint: bool) -> tuple[list[str], list[Any]]:
    """WHERE terms on table alias ``t`` (studio_queue or studio_queue_rules)."""
    p = c.hint if planner_hint else ""  # a unary + keeps SQLite from picking a filter index over the page order
    conds: list[str] = []
    args: list[Any] = []
    s, sa = c.sc(t)
    if s:
        conds.append(s)
        args.extend(sa)
    if f.rule:
        conds.append(f"{t}.rule_id = ?")
        args.append(f.rule)
    if len(f.outcomes) == 1:
        conds.append(f"{p}{t}.outcome = ?")
    else:
        conds.append(f"{p}{t}.outcome IN ({','.join('?' * len(f.outcomes))})")
    args.extend(f.outcomes)
    if f.segment:
        conds.append(f"{p}{t}.segment = ?")
        args.append(f.segment)
    if f.tier is not None:
        conds.append(f"{p}{t}.tier = ?")
        args.append(f.tier)
    if f.status:
        conds.append(f"{p}{t}.decided = ?")
        args.append(1 if f.status == "decided" else 0)
    if f.rule:
        if f.gate:
            conds.append(f"{t}.gate = ?")
            args.append(f.gate)
        if f.severity == "error":
            conds.append(f"{t}.severity = 0")
    else:
        if f.gate:
            conds.append(f"({t}.{'gates_err' if f.severity == 'error' else 'gates_any'} & ?) != 0")
            args.append(gate_bit(f.gate))
        elif f.severity == "error":
            conds.append(f"{t}.n_errors > 0")
    if f.q:  # id prefix, as a range so an index on member_id serves it
        conds.append(f"{t}.member_id >= ? AND {t}.member_id < ?")
        args.extend([f.q, f.q + "\U0010ffff"])
    return conds, args


def _count_dim(f: Filter) -> tuple[str, str] | None:
    if f.rule:
        return ("rule_err" if f.severity == "error" else "rule"), f.rule
    if f.gate:
        return ("gate_err" if f.severity == "error" else "gate"), f.gate
    return ("err" if f.severity == "error" else "all"), ""


def _scoped(c: Conn, conds: list[str], args: list[Any], alias: str = "") -> None:
    s, sa = c.sc(alias)
    if s:
        conds.append(s)
        args.extend(sa)


def count(db: Any, f: Filter) -> tuple[int, bool]:
    """(members matching ``f``, exact?). From ``studio_counts``; a member-id prefix is counted up to COUNT_CAP."""
    c = conn_of(db)
    if f.rule and f.gate:
        row = c.execute("SELECT gate FROM studio_rules WHERE rule_id = ?", (f.rule,)).fetchone()
        if row is None or row[0] != f.gate:
            return 0, True
    if f.q:
        t = "studio_queue_rules" if f.rule else "studio_queue"
        conds, args = _conds(c, f, t, planner_hint=False)
        n = c.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {t} WHERE {' AND '.join(conds)} LIMIT ?) x",
                      [*args, COUNT_CAP + 1]).fetchone()[0]
        return min(n, COUNT_CAP), n <= COUNT_CAP
    dim, value = _count_dim(f)
    conds = ["dim = ?", "value = ?", f"outcome IN ({','.join('?' * len(f.outcomes))})"]
    args: list[Any] = [dim, value, *f.outcomes]
    _scoped(c, conds, args)
    if f.segment:
        conds.append("segment = ?")
        args.append(f.segment)
    if f.tier is not None:
        conds.append("tier = ?")
        args.append(f.tier)
    if f.status:
        conds.append("decided = ?")
        args.append(1 if f.status == "decided" else 0)
    n = c.execute(f"SELECT COALESCE(SUM(n), 0) FROM studio_counts WHERE {' AND '.join(conds)}", args).fetchone()[0]
    return int(n), True


def _table_size(c: Conn, f: Filter) -> int:
    if f.rule:
        dim, value = "rule", f.rule
    else:
        dim, value = "all", ""
    conds, args = ["dim = ?", "value = ?"], [dim, value]
    _scoped(c, conds, args)
    return int(c.execute(f"SELECT COALESCE(SUM(n), 0) FROM studio_counts WHERE {' AND '.join(conds)}",
                         args).fetchone()[0])


@dataclass
class Page:
    keys: list[str]
    has_more: bool  # more rows beyond this page in the direction walked
    first: tuple[Any, int] | None
    last: tuple[Any, int] | None


def page_keys(db: Any, f: Filter, *, limit: int, after: tuple[Any, int] | None = None,
              before: tuple[Any, int] | None = None, from_end: bool = False, matches: int | None = None) -> Page:
    """Member keys of one page in page order, walking forward from ``after`` or backward from ``before``
    (or from the end). ``matches`` (the filter's count, if known) picks the index: when few rows match,
    walk the filter index and sort them; else walk the page order and filter as we go."""
    c = conn_of(db)
    t = "r" if f.rule else "q"
    table = "studio_queue_rules r" if f.rule else "studio_queue q"
    col = SORT_COLUMNS[f.sort]
    keycols = [f"{t}.{col}", f"{t}.seq"] if col else [f"{t}.seq"]
    total = _table_size(c, f)
    few = matches is not None and not f.q and total > 0 and matches * 400 < total
    conds, args = _conds(c, f, t, planner_hint=not few and not f.q and not f.rule)
    backward = before is not None or from_end
    asc = (f.order == "asc") != backward
    cursor = before if before is not None else after
    if cursor is not None:
        op = ">" if asc else "<"
        vals = list(cursor) if col else [cursor[1]]
        if len(keycols) == 1:
            conds.append(f"{keycols[0]} {op} ?")
        else:
            conds.append(f"({', '.join(keycols)}) {op} ({', '.join('?' * len(keycols))})")
        args.extend(vals)
    direction = "ASC" if asc else "DESC"
    plus = c.hint if few else ""
    order = ", ".join(f"{plus}{k} {direction}" for k in keycols)
    sel = f"{t}.member_key, {t}.{col or 'seq'}, {t}.seq"
    rows = c.execute(f"SELECT {sel} FROM {table} WHERE {' AND '.join(conds)} ORDER BY {order} LIMIT ?",
                     [*args, limit + 1]).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    if backward:
        rows.reverse()
    keys = [r[0] for r in rows]
    first = (rows[0][1], rows[0][2]) if rows else None
    last = (rows[-1][1], rows[-1][2]) if rows else None
    return Page(keys, has_more, first, last)


def position(db: Any, f: Filter, member_key: str) -> tuple[Any, int] | None:
    """The member's (sort value, seq): a cursor for its neighbours in the filter's order."""
    c = conn_of(db)
    col = SORT_COLUMNS[f.sort] or "seq"
    conds, args = ["member_key = ?"], [member_key]
    _scoped(c, conds, args)
    row = c.execute(f"SELECT {col}, seq FROM studio_queue WHERE {' AND '.join(conds)}", args).fetchone()
    return (row[0], row[1]) if row else None


def rows_for(db: Any, keys: Sequence[str]) -> list[dict[str, Any]]:
    """The queue rows of ``keys`` (in that order), with the rules that fired and the latest decision."""
    if not keys:
        return []
    c = conn_of(db)
    conds, args = [_in("member_key", len(keys))], list(keys)
    _scoped(c, conds, args)
    where = " AND ".join(conds)
    by_key = {r[0]: dict(zip(_QCOLS, r)) for r in c.execute(
        f"SELECT {', '.join(_QCOLS)} FROM studio_queue WHERE {where}", args)}
    for r in by_key.values():
        r["rules"] = []
        r["latest"] = None
    for key, rule, sev in c.execute(f"SELECT member_key, rule_id, severity FROM studio_queue_rules "
                                    f"WHERE {where} ORDER BY severity, rule_id", args):
        by_key[key]["rules"].append((rule, SEVERITY_NAMES[sev]))
    for key, action, reviewer in c.execute(
            f"SELECT member_key, action, reviewer FROM decisions WHERE id IN (SELECT MAX(id) FROM decisions "
            f"WHERE {where} AND action IN ('approve', 'reject') GROUP BY member_key)", args):
        by_key[key]["latest"] = (action, reviewer)
    return [by_key[k] for k in keys if k in by_key]


# ------------------------------------------------------------------------------------------ menus and dashboard


def facets(db: Any) -> dict[str, Any]:
    """Filter menus: rules (with their gate and member count), gates, segments, tiers, counts by outcome."""
    c = conn_of(db)
    s, sa = c.sc()
    a = f" AND {s}" if s else ""
    counts = {o: int(n) for o, n in c.execute(
        f"SELECT outcome, SUM(n) FROM studio_counts WHERE dim = 'all'{a} GROUP BY outcome", sa) if n}
    rules = [(r, g, int(n)) for r, g, n in c.execute(
        "SELECT c.value, COALESCE(MIN(r.gate), ''), SUM(c.n) FROM studio_counts c "
        f"LEFT JOIN studio_rules r ON r.rule_id = c.value WHERE c.dim = 'rule'{a.replace('scope', 'c.scope')} "
        "GROUP BY c.value HAVING SUM(c.n) > 0 ORDER BY 3 DESC, 1", sa)]
    gates = sorted({g for _, g, _ in rules if g})
    segments = [x for (x,) in c.execute(f"SELECT DISTINCT segment FROM studio_counts WHERE dim = 'all' AND n > 0 "
                                        f"AND segment != ''{a} ORDER BY 1", sa)]
    tiers = [t for (t,) in c.execute(f"SELECT DISTINCT tier FROM studio_counts WHERE dim = 'all' AND n > 0 "
                                     f"AND tier != 0{a} ORDER BY 1", sa)]
    return {"rules": rules, "gates": gates, "segments": segments, "tiers": tiers, "counts": counts}


def sums(db: Any, dim: str, by: Sequence[str], *, value: str | None = None,
         outcomes: Sequence[str] | None = None) -> list[tuple]:
    """SUM(n) of ``dim`` grouped by columns ``by`` (from value, outcome, segment, tier, decided)."""
    c = conn_of(db)
    allowed = {"value", "outcome", "segment", "tier", "decided"}
    if not set(by) <= allowed:
        raise ValueError(f"cannot group by {by}")
    conds, args = ["dim = ?"], [dim]
    _scoped(c, conds, args)
    if value is not None:
        conds.append("value = ?")
        args.append(value)
    if outcomes is not None:
        conds.append(f"outcome IN ({','.join('?' * len(outcomes))})")
        args.extend(outcomes)
    cols = ", ".join(by)
    grp = f" GROUP BY {cols}" if by else ""
    sel = f"{cols}, SUM(n)" if by else "SUM(n)"
    return [(*r[:-1], int(r[-1])) for r in c.execute(
        f"SELECT {sel} FROM studio_counts WHERE {' AND '.join(conds)}{grp}", args) if r[-1]]


def rule_info(db: Any) -> dict[str, str]:
    return dict(conn_of(db).execute("SELECT rule_id, gate FROM studio_rules").fetchall())


def store_version(db: Any) -> tuple:
    """Changes whenever the run writes members (O(1))."""
    c = conn_of(db)
    if not c.pg:
        return tuple(c.execute("SELECT (SELECT MAX(rowid) FROM members), (SELECT COUNT(*) FROM studio_rules)")
                     .fetchone())
    s, sa = c.sc()
    return tuple(c.execute(f"SELECT (SELECT MAX(updated_at) FROM members WHERE {s}), "
                           "(SELECT COUNT(*) FROM studio_rules)", sa).fetchone())


def decode_json(s: str | None) -> Any:
    return json.loads(s) if s else None
