"""One message: the editor and its verdict on top, the full trail below, the reviewer's decision.

The page opens on the words that need a decision (the failing model attempt
of a message that fell back or was rejected; the model's message otherwise)
with its findings beside the editor, and a verdict judged by the gates now.
A reviewer edits the words (never the engine's lines: ``editor``),
re-checks them (recorded as an ``edit``), and approves or rejects. Approving
a message that fails an error rule needs an explicit override of each failing
rule, with a reason, by an account with the ``override`` role; the server
judges the message again whatever the page showed. Every decision is bound to
what was judged: words, message, hash, verdict, findings, overrides.

Every POST answers with a redirect (post/redirect/get): a re-check to the
page showing it, a decision to the next message in the same queue filter,
an error back to the editor with the reviewer's words and reason kept.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..export import message_hash
from . import auth, editor
from . import queue as Q
from ..store import queue_index as QI
from .highlight import message_view

_BASIS = re.compile(r"^(record|fallback|attempt:\d{1,4}|edit:\d{1,18})$")
FALLBACK_OUTCOMES = ("fallback", "rejected", "holdout")


def _basis(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if not _BASIS.match(value):
        raise HTTPException(400, f"The query parameter from={value[:40]!r} is not valid: use the page's links.")
    return value


def _member(request: Request) -> dict[str, Any]:
    m = request.app.state.studio.sdb.member(request.path_params["key"])
    if m is None:
        raise HTTPException(404, "No member with that key in this run.")
    return m


def _url(key: str, qs: str = "", **extra: str) -> str:
    parts = [qs] if qs else []
    parts += [f"{k}={quote(v, safe=':')}" for k, v in extra.items() if v]
    return f"/review/{quote(key)}" + ("?" + "&".join(parts) if parts else "")


def _fallback_sent(m: dict[str, Any]) -> bool:
    return m["outcome"] in FALLBACK_OUTCOMES and any(a["kind"] == "fallback" for a in m["attempts"])


def trail(studio, m: dict[str, Any]) -> dict[str, Any]:
    """Attempts with their assembled messages and findings marked, the message sent now, the prompt."""
    ctx = studio.campaign()
    rec = m["record"]
    plan_rec = rec.get("plan")
    names = {p["product_id"]: p.get("name", p["product_id"]) for p in (plan_rec or {}).get("products", [])}
    personal = basic = None
    if ctx is not None:
        try:
            personal = ctx.plan(m["member_id"])
            basic = ctx.plan(m["member_id"], basic=True)
        except Exception:  # noqa: BLE001  (a broken member row: show what is stored)
            personal = basic = None
        if not names:
            names = ctx.names()
    channel = rec.get("channel") or "email"
    attempts = []
    gen = [a for a in m["attempts"] if a["kind"] != "fallback"]
    for a in m["attempts"]:
        msg = None
        if a["kind"] == "fallback" and _fallback_sent(m):
            msg = editor.view_dict(rec.get("message"), channel)
        elif a["kind"] != "fallback" and gen and a is gen[-1] and m["outcome"] in ("review", "repaired", "approved") \
                and rec.get("message"):
            msg = editor.view_dict(rec.get("message"), channel)
        elif ctx is not None:
            plan = basic if a["kind"] == "fallback" and rec.get("fallback") != "personal" else personal
            if plan is not None:
                try:
                    built = ctx.assemble_draft(plan, a["response"])
                except Exception:  # noqa: BLE001
                    built = None
                if built is not None:
                    from .campaign import message_dict

                    msg = message_dict(built)
        attempts.append({**a, "view": message_view(msg, a["findings"], names) if msg else None,
                         "failed": any(f.get("severity") == "error" for f in a["findings"])})
    fb = next((a for a in reversed(m["attempts"]) if a["kind"] == "fallback"), None)  # the one sent
    final_findings = fb["findings"] if fb and _fallback_sent(m) else rec.get("findings", [])
    system_prompt = None
    if ctx is not None:
        try:
            system_prompt = ctx.prompts.system()
        except Exception:  # noqa: BLE001
            system_prompt = None
    return {"attempts": attempts, "names": names, "plan": plan_rec, "system_prompt": system_prompt,
            "final": message_view(editor.view_dict(rec.get("message"), channel), final_findings, names),
            "fallback_sent": _fallback_sent(m), "channel": channel}


def page(request: Request, form) -> Response:
    from .app import render

    studio = request.app.state.studio
    m = _member(request)
    f = Q.detail_filter(request.query_params)
    basis = _basis(request.query_params.get("from"))
    flash = auth.pop_flash(request)
    words = None
    kept: dict[str, Any] = {}
    if flash and flash.get("member") == m["key"]:
        kept = flash
        basis = basis or flash.get("basis")
        words = editor.Words.of_json(flash.get("words"))
    try:
        st = editor.state(studio, m, basis, words=words)
    except ValueError as e:
        raise HTTPException(404, str(e)) from None
    db = studio.db
    prev_key, next_key = Q.neighbours(db, f, m["key"])
    qrow = (QI.rows_for(db, [m["key"]]) or [{}])[0]
    t = trail(studio, m)
    names = dict(t["names"])
    if st.plan is not None:
        names.update({pp.product.product_id: pp.product.name for pp in st.plan.products})
    user = auth.current_user(request)
    latest = next((d for d in reversed(m["decisions"]) if d["action"] in ("approve", "reject")), None)
    return render(request, "detail.html", {
        "m": m, "rec": m["record"], "st": st, "view": message_view(st.view, st.findings, names) if st.view else None,
        "names": names, "f": f, "qs": f.params(), "prev_key": prev_key, "next_key": next_key, "qrow": qrow,
        "sends": QI.SENDS, "latest": latest, "flash": flash if flash and flash.get("kind") == "ok" else None,
        "error": kept.get("error"), "reason": kept.get("reason", ""), "overrides": kept.get("overrides") or {},
        "labels": editor.LABELS.get(st.channel, editor.LABELS["email"]),
        "fields": editor.FIELDS.get(st.channel, editor.FIELDS["email"]),
        "decidable": m["outcome"] in editor.GENERATED, "can_override": bool(user and user.can("override")),
        "can_decide": bool(user and user.can("reviewer")), "campaign_error": studio.campaign_error
        if studio.campaign() is None else None, **t})


def _posted(request: Request, form) -> tuple[Any, dict[str, Any], Q.QueueFilter, str | None]:
    studio = request.app.state.studio
    m = _member(request)
    qs = form.get("f") if isinstance(form.get("f"), str) else ""
    from starlette.datastructures import QueryParams

    f = Q.detail_filter(QueryParams(qs or ""))
    basis = _basis(form.get("basis") if isinstance(form.get("basis"), str) else None)
    return studio, m, f, basis


def _back(request: Request, m: dict[str, Any], f: Q.QueueFilter, basis: str | None, *, error: str,
          st: editor.State | None = None, reason: str = "", overrides: dict[str, Any] | None = None) -> Response:
    auth.flash(request, {"member": m["key"], "kind": "error", "error": error, "basis": basis,
                         "words": st.words.json() if st is not None and st.words is not None else None,
                         "reason": reason, "overrides": overrides or {}})
    return RedirectResponse(_url(m["key"], f.params(), **({"from": basis} if basis else {})) + "#editor", 303)


def recheck(request: Request, form) -> Response:
    """Re-check the reviewer's words with the gates; recorded as an 'edit' decision, shown at the page's top."""
    studio, m, f, basis = _posted(request, form)
    try:
        st = editor.state(studio, m, basis, form=form)
    except ValueError as e:
        raise HTTPException(400, str(e)) from None
    if not st.editable or st.words is None:
        why = st.problem or ("Editing and re-checking need the campaign (catalog, offers, rules): "
                             + (studio.campaign_error or "start the studio with --campaign FILE"))
        return _back(request, m, f, basis, error=why, st=st)
    errs = st.errors
    n_err = sum(1 for x in st.findings if x.get("severity") == "error")
    note = f"re-checked: {st.verdict}, {n_err} error(s)" + (f" ({', '.join(errs)})" if errs else "") + \
        f", {len(st.findings) - n_err} other finding(s)"
    did = studio.sdb.add_decision(m["key"], auth.current_user(request).name, "edit", note, message_hash(st.message),
                                  st.message, basis=st.plan_basis, draft=st.words.json(), verdict=st.verdict,
                                  findings=st.findings)
    return RedirectResponse(_url(m["key"], f.params(), **{"from": f"edit:{did}"}) + "#editor", 303)


def decide(request: Request, form) -> Response:
    studio, m, f, basis = _posted(request, form)
    action = form.get("action")
    if action not in ("approve", "reject"):
        raise HTTPException(400, "action must be approve or reject")
    reason = str(form.get("reason") or "").strip()
    user = auth.current_user(request)
    ticked = {r[len("override:"):]: str(form.get(f"override_reason:{r[len('override:'):]}") or "").strip()
              for r in form.keys() if r.startswith("override:") and form.get(r) == "1"}
    if m["outcome"] not in editor.GENERATED:
        return _back(request, m, f, basis, error=f"No decision is possible for a {m['outcome']} member: the run "
                                                 "sends it nothing by design.", reason=reason)
    try:
        st = editor.state(studio, m, basis, form=form if basis != "record" else None)
    except ValueError as e:
        raise HTTPException(400, str(e)) from None
    problem = editor.reason_problem(reason)
    overrides: list[dict[str, str]] = []
    if action == "approve":
        if st.problem or not st.message:
            problem = st.problem or "There is no message to approve: edit one from a model attempt first."
        elif st.errors:
            if not user.can("override"):
                problem = (f"This message fails {', '.join(st.errors)}. Your account may not approve over failing "
                           "rules: reject it, or ask a reviewer with the override role.")
            else:
                missing = [r for r in st.errors if r not in ticked]
                if missing:
                    problem = ("Approving this message overrides failing rule(s): tick each one and say why: "
                               + ", ".join(missing) + ".")
                else:
                    for r in st.errors:
                        bad = editor.reason_problem(ticked[r], what=f"reason for overriding {r}")
                        if bad:
                            problem = bad
                            break
                        overrides.append({"rule_id": r, "reason": ticked[r]})
    if problem:
        return _back(request, m, f, basis, error=problem, st=st, reason=reason, overrides=ticked)
    studio.sdb.add_decision(m["key"], user.name, action, reason, message_hash(st.message), st.message,
                            basis=st.plan_basis if st.words is not None else "record",
                            draft=st.words.json() if st.words is not None else None, verdict=st.verdict,
                            findings=st.findings, overrides=overrides or None)
    _prev, nxt = Q.neighbours(studio.db, f, m["key"])
    text = f"{'Approved' if action == 'approve' else 'Rejected'} {m['member_id']}"
    if overrides:
        text += " over " + ", ".join(o["rule_id"] for o in overrides)
    target = nxt or m["key"]
    auth.flash(request, {"member": target, "kind": "ok", "text": text, "decided": m["key"],
                         "decided_id": m["member_id"], "action": action, "last": nxt is None})
    return RedirectResponse(_url(target, f.params()), 303)
