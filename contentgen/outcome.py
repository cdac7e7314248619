"""One member's outcome row for the run store: plan -> decide, with the member's own errors isolated.

``MemberWork`` is the window's unit of work. Whatever goes wrong while
planning, rendering, assembling or gating one member ends that member only:
before any model answer it is ``invalid`` (and quarantined with the input
file, line, field and the error), after one it is ``rejected`` (nothing is
sent; the error is in the record for a reviewer). Run-level failures are not
one member's: a provider that is down or refuses the key, the spending limit,
the run store, the disk. They propagate and the window stops. So does an
engine failure that hits most members (``EngineFailure``): that is a bug to
fix, not a row to skip.
"""

from __future__ import annotations

import contextvars
import traceback
from pathlib import Path
from typing import Any

from . import failpoints
from .errors import BudgetExhausted, ContentgenError, ProviderUnavailable, StoreError
from .load import MemberRow
from .repair import export_record
from .store import DATABASE_ERRORS

PKG = Path(__file__).resolve().parent

# the member this task is deciding and the model answers it has had (each member runs in its own task,
# so in its own context)
_current: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("current_member")


def count_answer() -> None:
    """Called by the generate step for every answer (cached or paid) the current member gets."""
    cur = _current.get(None)
    if cur is not None:
        cur["answers"] += 1
        failpoints.poison("answer", cur["key"])


class EngineFailure(ContentgenError):
    """Most members fail inside the engine with the same kind of error: stop instead of rejecting them all."""


def is_run_level(exc: BaseException, transport_exc: type[BaseException]) -> bool:
    if isinstance(exc, (transport_exc, ProviderUnavailable, BudgetExhausted, StoreError, *DATABASE_ERRORS, OSError,
                        MemoryError, EngineFailure)):
        return True
    # a provider rejection that means the run is misconfigured (401/403/404): not this member's fault
    return isinstance(exc, ContentgenError) and bool(getattr(exc, "fatal", False))


def describe_error(exc: BaseException, member: Any | None) -> dict[str, Any]:
    """The error, where in contentgen it happened (file:line), its stage, and the member field it involved."""
    frames = traceback.extract_tb(exc.__traceback__)
    code = next((f for f in reversed(frames) if Path(f.filename).resolve().is_relative_to(PKG)), None)
    where = ""
    stage = "decide"
    if code is not None:
        rel = Path(code.filename).resolve().relative_to(PKG.parent)
        where = f"{rel}:{code.lineno}"
        parts = rel.parts
        stage = {"plan.py": "plan", "prompts.py": "render", "assemble.py": "assemble",
                 "repair.py": "decide", "outcome.py": "plan"}.get(parts[-1], "gates" if "gates" in parts else "decide")
    mod = type(exc).__module__
    name = type(exc).__name__ if mod == "builtins" else f"{mod}.{type(exc).__name__}"
    return {"stage": stage, "error": f"{name}: {exc}", "code": where, "field": _field_of(exc, member)}


def _field_of(exc: BaseException, member: Any | None) -> str:
    """The member field whose value the failing code was holding (innermost frame first), if any."""
    if member is None:
        return ""
    values = {}
    for name, v in member.__dict__.items():
        if isinstance(v, str) and v and name not in values.values():
            values.setdefault(v, name)
    tb = exc.__traceback__
    frames = []
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for v in frame.f_locals.values():
            if isinstance(v, str) and v in values:
                return values[v]
    return ""


class MemberWork:
    """``await work(row)`` -> the store row for one member (``save_members`` shape, plus its quarantine records)."""

    def __init__(self, planner, decider, members_path: Path, transport_exc: type[BaseException], *,
                 breaker_min: int = 20, breaker_share: float = 0.5, metrics: Any = None) -> None:
        from .metrics import NullMetrics

        self.metrics = metrics or NullMetrics()  # per-member spans and stage timers (run --metrics-port, OTel)
        self.planner = planner
        self.decider = decider
        self.members_path = str(members_path)
        self.transport_exc = transport_exc
        self.finished = 0
        self.errors = 0
        self.first_error: dict[str, Any] | None = None
        self.breaker_min = breaker_min
        self.breaker_share = breaker_share

    async def __call__(self, r: MemberRow) -> dict[str, Any]:
        row = await self._decide(r)
        self.finished += 1
        return row

    async def _decide(self, r: MemberRow) -> dict[str, Any]:
        quarantine = [q.to_dict() for q in r.quarantined]
        if r.member is None:
            q = r.quarantined[0]
            return {"member_key": r.key, "seq": r.seq, "member_id": q.member_id, "outcome": "invalid",
                    "record": {"member_id": q.member_id, "member_key": r.key, "outcome": "invalid",
                               "send": False, "reason": q.reason, "quarantine": q.to_dict(),
                               "message": None, "findings": []}, "quarantine": quarantine}
        plan = None
        cur = {"key": r.key, "answers": 0}
        _current.set(cur)
        m = self.metrics.member(r.key)  # metrics: the member's span and timer
        try:
            failpoints.poison("plan", r.key)
            with m.stage("plan"):  # metrics:
                plan = self.planner.plan(r.member, r.recommendations, recently_bought=r.recently_bought,
                                         returned=r.returned)
            failpoints.hit("plan")
            if plan.action == "suppress":
                m.end("suppressed")  # metrics:
                rec = export_record(plan, None, outcome="suppressed", reason=plan.reason)
                return self._row(r, "suppressed", rec, [], quarantine)
            failpoints.poison("decide", r.key)
            d = await m.run(self.decider.decide(plan))  # metrics: m.run
            rec = export_record(plan, d, reason=plan.reason, variant=plan.variant)
            return self._row(r, d.outcome, rec, d.attempts, quarantine)
        except Exception as e:
            if plan is None:
                m.end("error")  # metrics: m.run ends the member's span once deciding began
            if is_run_level(e, self.transport_exc):
                raise
            return self._isolated(r, plan, e, quarantine, answered=cur["answers"] > 0)

    def _isolated(self, r: MemberRow, plan, exc: BaseException, quarantine: list[dict[str, Any]], *,
                  answered: bool) -> dict[str, Any]:
        """This member's error ends this member: invalid (no answer paid yet) or rejected (after one)."""
        info = describe_error(exc, r.member)
        self.errors += 1
        self.first_error = self.first_error or info
        self._breaker()
        m = r.member
        outcome = "rejected" if answered else "invalid"
        reason = (f"contentgen failed on this member while {_VERB.get(info['stage'], info['stage'])}: {info['error']}"
                  f" (at {info['code'] or 'unknown'}); the rest of the run went on. Report this row to the "
                  "contentgen maintainers")
        q = {"file": self.members_path, "line": r.line, "field": info["field"] or f"({info['stage']})",
             "reason": reason, "member_id": m.member_id if m else None, "kind": "member"}
        rec: dict[str, Any]
        if plan is not None and plan.action == "send":
            rec = export_record(plan, None, outcome=outcome, reason=reason, variant=plan.variant)
        else:
            rec = {"member_id": m.member_id, "outcome": outcome, "segment": m.segment, "tier": m.opt_in_tier,
                   "send": False, "reason": reason, "message": None, "findings": []}
        rec["member_key"] = r.key
        rec["error"] = {**info, "file": self.members_path, "line": r.line}
        if outcome == "invalid":
            rec["quarantine"] = q
        return self._row(r, outcome, rec, [], quarantine + [q])

    def _breaker(self) -> None:
        done = self.finished + self.errors
        if self.errors >= self.breaker_min and self.errors >= self.breaker_share * done:
            e = self.first_error or {}
            raise EngineFailure(
                f"{self.errors} of the last {done} members failed inside contentgen (first: {e.get('error')} at "
                f"{e.get('code')}, while {_VERB.get(e.get('stage', ''), e.get('stage'))})",
                hint="this is a bug or a systematically broken input, not one bad row: fix it and re-run the same "
                     "command; members already decided are kept")

    @staticmethod
    def _row(r: MemberRow, outcome: str, rec: dict[str, Any], attempts: list[dict[str, Any]],
             quarantine: list[dict[str, Any]]) -> dict[str, Any]:
        m = r.member
        return {"member_key": r.key, "seq": r.seq, "member_id": m.member_id if m else None, "outcome": outcome,
                "segment": m.segment if m else None, "tier": m.opt_in_tier if m else None, "record": rec,
                "attempts": attempts, "quarantine": quarantine}


_VERB = {"plan": "planning", "render": "rendering its prompt", "assemble": "assembling its message",
         "gates": "gating its message", "decide": "deciding"}

