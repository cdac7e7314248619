"""One message's full trail, and the reviewer's decision on it.

Shows the member's allowed inputs and the evidence the tier withheld (from the
plan stored with the record), the prompt, every model attempt with its
findings marked at their spans, the fallback sent instead, and the history of
decisions. A reviewer can edit the words and re-check them with the same gates
(recorded as an ``edit``), approve with a written reason (enforced here, 400
without one), or reject. Decisions are appended to the store's ``decisions``
table with the message hash; the next ``contentgen export RUN_DIR`` applies them.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from ..export import message_hash
from .highlight import message_view

GENERATED_OUTCOMES = ("review", "repaired", "approved")
FALLBACK_OUTCOMES = ("fallback", "rejected", "holdout")


def load(db, key: str) -> dict[str, Any] | None:
    row = db.execute("SELECT member_key, seq, member_id, state, outcome, segment, tier, record, updated_at "
                     "FROM members WHERE member_key = ?", (key,)).fetchone()
    if row is None:
        return None
    attempts = []
    for n, kind, prompt, response, findings, pt, ct, cached in db.execute(
            "SELECT n, kind, prompt, response, findings, prompt_tokens, completion_tokens, cached FROM attempts "
            "WHERE member_key = ? ORDER BY n", (key,)):
        attempts.append({"n": n, "kind": kind, "prompt": prompt, "response": response,
                         "findings": json.loads(findings or "[]"), "prompt_tokens": pt or 0,
                         "completion_tokens": ct or 0, "cached": bool(cached)})
    decisions = []
    for i, reviewer, action, reason, mhash, message, at in db.execute(
            "SELECT id, reviewer, action, reason, message_hash, message, created_at FROM decisions "
            "WHERE member_key = ? ORDER BY id", (key,)):
        decisions.append({"id": i, "reviewer": reviewer, "action": action, "reason": reason, "message_hash": mhash,
                          "message": json.loads(message) if message else None, "created_at": at})
    return {"key": row[0], "seq": row[1], "member_id": row[2] or row[0], "state": row[3], "outcome": row[4],
            "segment": row[5], "tier": row[6], "record": json.loads(row[7]), "updated_at": row[8],
            "attempts": attempts, "decisions": decisions}


def _fallback_sent(m: dict[str, Any]) -> bool:
    return m["outcome"] in FALLBACK_OUTCOMES and any(a["kind"] == "fallback" for a in m["attempts"])


def plan_for(ctx, m: dict[str, Any], basis: str):
    if ctx is None:
        return None
    # the segment's basic message is judged on the basic plan; a personal fallback on the member's own
    basic = basis == "record" and _fallback_sent(m) and m["record"].get("fallback") != "personal"
    try:
        return ctx.plan(m["member_id"], basic=basic)
    except Exception:
        return None


def attempt_message(ctx, m: dict[str, Any], a: dict[str, Any], plan) -> dict[str, Any] | None:
    """The assembled message the gates saw for attempt ``a`` (rebuilt from its draft when possible)."""
    from .campaign import message_dict

    rec_msg = m["record"].get("message")
    if a["kind"] == "fallback":
        return rec_msg if _fallback_sent(m) else None
    gen = [x for x in m["attempts"] if x["kind"] != "fallback"]
    if gen and a is gen[-1] and m["outcome"] in GENERATED_OUTCOMES and rec_msg:
        return rec_msg
    if ctx is not None and plan is not None:
        try:
            msg = ctx.assemble_draft(plan, a["response"])
        except Exception:
            msg = None
        if msg is not None:
            return message_dict(msg)
    return None


def base_message(ctx, m: dict[str, Any], basis: str) -> tuple[dict[str, Any] | None, Any]:
    """(message to start editing from, plan to judge it with) for basis 'record' or 'attempt:N'."""
    if basis.startswith("attempt:"):
        try:
            n = int(basis.split(":", 1)[1])
        except ValueError:
            return None, None
        a = next((x for x in m["attempts"] if x["n"] == n and x["kind"] != "fallback"), None)
        if a is None:
            return None, None
        plan = plan_for(ctx, m, basis)
        return attempt_message(ctx, m, a, plan), plan
    return m["record"].get("message"), plan_for(ctx, m, "record")


def context(request: Request, m: dict[str, Any], **extra: Any) -> dict[str, Any]:
    studio = request.app.state.studio
    ctx = studio.campaign()
    rec = m["record"]
    plan_rec = rec.get("plan")
    names = {p["product_id"]: p.get("name", p["product_id"]) for p in (plan_rec or {}).get("products", [])}
    personal_plan = plan_for(ctx, m, "attempt:0")
    if ctx is not None and not names:
        names = ctx.names()
    attempts = []
    for a in m["attempts"]:
        plan = plan_for(ctx, m, "record") if a["kind"] == "fallback" else personal_plan
        msg = attempt_message(ctx, m, a, plan)
        attempts.append({**a, "view": message_view(msg, a["findings"], names) if msg else None})
    fb = next((a for a in reversed(m["attempts"]) if a["kind"] == "fallback"), None)  # the one sent
    failed_last = next((a for a in reversed(attempts) if a["kind"] != "fallback"), None) if fb else None
    final_findings = fb["findings"] if fb and _fallback_sent(m) else rec.get("findings", [])
    basis = extra.pop("basis", None) or request.query_params.get("from", "record")
    editor = extra.pop("editor", None)
    if editor is None:
        base, _ = base_message(ctx, m, basis)
        editor = {"message": base, "findings": None, "verdict": None}
    system_prompt = None
    if ctx is not None:
        try:
            system_prompt = ctx.prompts.system()
        except Exception:
            system_prompt = None
    editable_attempts = [a["n"] for a in attempts if a["kind"] != "fallback" and a["view"]]
    latest = next((d for d in reversed(m["decisions"]) if d["action"] in ("approve", "reject")), None)
    return {"m": m, "rec": rec, "plan": plan_rec, "names": names, "attempts": attempts,
            "failed_last": failed_last, "final": message_view(rec.get("message"), final_findings, names), "fallback_sent": _fallback_sent(m),
            "fallback_kind": rec.get("fallback") or "segment",
            "editor": editor, "basis": basis, "editable_attempts": editable_attempts, "system_prompt": system_prompt,
            "campaign_error": studio.campaign_error if ctx is None else None, "latest": latest,
            "flash": request.query_params.get("done"), "error": None, "reason": "", **extra}


async def page(request: Request) -> Response:
    from .app import render

    m = load(request.app.state.studio.db, request.path_params["key"])
    if m is None:
        return render(request, "error.html", {"title": "Not found",
                                              "message": "No member with that key in this run."}, 404)
    return render(request, "detail.html", context(request, m))


def _edits(form) -> dict[str, Any]:
    return {k: str(v) for k, v in form.items() if k in ("subject", "preheader", "body") or k.startswith("explanation_")}


def _norm(v) -> str:
    return str(v or "").replace("\r\n", "\n").strip()


def _apply(base: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k in ("subject", "preheader", "body"):
        if k in edits:
            out[k] = edits[k]
    out["explanations"] = [dict(x, text=edits.get(f"explanation_{i}", x.get("text", "")))
                           for i, x in enumerate(base.get("explanations") or [])]
    return out


def _differs(base: dict[str, Any], edits: dict[str, Any]) -> bool:
    for k in ("subject", "preheader", "body"):
        if k in edits and _norm(edits[k]) != _norm(base.get(k)):
            return True
    for i, x in enumerate(base.get("explanations") or []):
        k = f"explanation_{i}"
        if k in edits and _norm(edits[k]) != _norm(x.get("text")):
            return True
    return False


async def _posted(request: Request) -> Response | tuple[Any, str, Any, Any]:
    """(studio, member key, the member's record, the posted form), or a 404 for an unknown member."""
    studio = request.app.state.studio
    key = request.path_params["key"]
    m = load(studio.db, key)
    if m is None:
        return PlainTextResponse("no such member", status_code=404)
    return studio, key, m, await request.form()


async def recheck(request: Request) -> Response:
    """Re-check the reviewer's edited words with the same gates; recorded as an 'edit' decision."""
    from .app import render

    got = await _posted(request)
    if isinstance(got, Response):
        return got
    studio, key, m, form = got
    basis = str(form.get("basis") or "record")
    ctx = studio.campaign()
    if ctx is None:
        return render(request, "detail.html", context(request, m, basis=basis, error=(
            "Re-check needs the campaign (catalog, offers, rules): " + (studio.campaign_error or ""))), 409)
    base, plan = base_message(ctx, m, basis)
    if base is None or plan is None:
        return render(request, "detail.html", context(request, m, basis=basis, error=(
            "There is no message to edit from that starting point.")), 400)
    msg, findings, verdict = ctx.recheck(plan, base, _edits(form))
    n_err = sum(1 for f in findings if f["severity"] == "error")
    studio.store.add_decision(key, request.state.user.name, "edit",
                              f"re-checked: {verdict}, {n_err} error(s), {len(findings) - n_err} other finding(s)",
                              message_hash(msg), msg)
    m = load(studio.db, key)
    names = ctx.names(plan)
    editor = {"message": msg, "findings": findings, "verdict": verdict,
              "view": message_view(msg, findings, names), "edited": True}
    return render(request, "detail.html", context(request, m, basis=basis, editor=editor))


async def decide(request: Request) -> Response:
    from .app import render

    got = await _posted(request)
    if isinstance(got, Response):
        return got
    studio, key, m, form = got
    action = str(form.get("action") or "")
    reason = str(form.get("reason") or "").strip()
    basis = str(form.get("basis") or "record")
    if action not in ("approve", "reject"):
        return PlainTextResponse("action must be approve or reject", status_code=400)

    def fail(msg: str, status: int = 400) -> Response:
        base, _ = base_message(studio.campaign(), m, basis)
        editor = {"message": _apply(base, _edits(form)), "findings": None, "verdict": None} if base else None
        return render(request, "detail.html", context(request, m, basis=basis, error=msg, editor=editor,
                                                      reason=reason), status)

    if action == "approve" and not reason:
        return fail("Approving needs a written reason: say why this message may go out.")
    ctx = studio.campaign()
    base, plan = base_message(ctx, m, basis)
    edits = _edits(form)
    if base is not None and _differs(base, edits):
        if ctx is None or plan is None:
            return fail("Editing needs the campaign (catalog, offers, rules): " + (studio.campaign_error or ""), 409)
        message, _findings, _verdict = ctx.recheck(plan, base, edits)
    else:
        message = base
    if action == "approve" and not message:
        return fail("There is no message to approve: edit one from a model attempt first.")
    studio.store.add_decision(key, request.state.user.name, action, reason, message_hash(message), message)
    return RedirectResponse(f"/review/{quote(key)}?done={action}", 303)
