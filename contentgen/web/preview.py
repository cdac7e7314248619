"""The copywriter preview: pick sample members and two or more prompt variants, generate side by side.

Screens: ``/preview`` (members by segment, tier, churn band or id; variants),
``/preview/variants/new`` (edit a copy of the templates in the browser; saved as
a new variant under its hash), ``/preview/c/<id>`` (a saved comparison: each
member's email as they would see it, its text with the gate findings marked,
the "Why was this recommended?" panels, tokens and cost per variant), and
``/preview/history``. Every handler runs in a worker thread; a comparison runs
its own event loop there, so a slow model or template never stalls the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..models import SEGMENTS
from . import variants as V
from .campaign import CHURN_BANDS, churn_band
from .highlight import message_view

MAX_MEMBERS = 8


def _no_campaign(request: Request) -> Response:
    from .app import render

    studio = request.app.state.studio
    return render(request, "error.html", {"title": "The preview needs the campaign",
                                          "message": studio.campaign_error or "campaign not loaded"}, 409)


def import_variants_dir(studio, path: Path) -> None:
    ctx = studio.campaign()
    if ctx is not None:
        V.ensure_base(studio.sdb)
        V.import_dir(studio.sdb, ctx, path)


def _choice(qp, name: str, allowed) -> str:
    v = qp.get(name, "")
    if v and v not in allowed:
        raise HTTPException(400, f"The query parameter {name}={v[:40]!r} is not valid: one of {', '.join(allowed)}.")
    return v


def page(request: Request, form) -> Response:
    from .app import render

    studio = request.app.state.studio
    ctx = studio.campaign()
    if ctx is None:
        return _no_campaign(request)
    V.ensure_base(studio.sdb)
    qp = request.query_params
    q = qp.get("q", "")
    if len(q) > 100:
        raise HTTPException(400, "The query parameter q is longer than 100 characters.")
    filt = {"segment": _choice(qp, "segment", SEGMENTS), "tier": _choice(qp, "tier", ("1", "2", "3")),
            "churn": _choice(qp, "churn", tuple(CHURN_BANDS)), "q": q}
    rows = ctx.find_members(**filt)
    members = [{"member_id": r.member.member_id, "segment": r.member.segment, "tier": r.member.opt_in_tier,
                "channel": ctx.planner.channel_for(r.member) or "none",
                "churn": churn_band(r.member.churn_risk), "risk": r.member.churn_risk,
                "products": len(r.recommendations)} for r in rows]
    chosen = qp.getlist("variant")
    return render(request, "preview.html", {
        "filt": filt, "members": members, "segments": SEGMENTS, "bands": list(CHURN_BANDS),
        "variants": [{"id": V.variant_id({}), "name": V.BASE_NAME, "files": {}}] + [
            v for v in V.list_variants(studio.sdb, ctx) if v["id"] != V.variant_id({})],
        "chosen": chosen, "max_members": MAX_MEMBERS, "recent": studio.sdb.comparisons(8),
        "error": (qp.get("error") or "")[:500]})


def variant_form(request: Request, form) -> Response:
    from .app import render

    studio = request.app.state.studio
    ctx = studio.campaign()
    if ctx is None:
        return _no_campaign(request)
    base = V.base_files(Path(ctx.campaign.prompts_dir))
    parent = V.get_variant(studio.sdb, request.query_params.get("from", ""), ctx) \
        if request.query_params.get("from") else None
    if parent and parent.get("campaign_variant"):  # a campaign variant: its template as message.j2
        text = (Path(ctx.campaign.prompts_dir) / parent["template"]).read_text(encoding="utf-8")
        parent = dict(parent, files={"message.j2": text})
    files = {**base, **(parent["files"] if parent else {})}
    return render(request, "variant_form.html", {"files": files, "parent": parent, "name": "", "error": None,
                                                 "editable": V.EDITABLE})


def variant_save(request: Request, form) -> Response:
    from .app import render

    studio = request.app.state.studio
    ctx = studio.campaign()
    if ctx is None:
        return _no_campaign(request)
    files = {n: str(form.get(f"file:{n}", "")) for n in V.EDITABLE if form.get(f"file:{n}") is not None}
    name = str(form.get("name") or "").strip()[:80]
    parent = str(form.get("parent") or "") or None
    base = V.base_files(Path(ctx.campaign.prompts_dir))
    overrides = {k: v.replace("\r\n", "\n") for k, v in files.items() if v.replace("\r\n", "\n") != base.get(k)}
    error = V.validate(ctx, studio.run_dir, overrides, studio.render_worker())
    if error is None and not name:
        error = "Give the variant a name."
    if error:
        return render(request, "variant_form.html", {"files": {**base, **files}, "parent": None, "name": name,
                                                     "error": error, "editable": V.EDITABLE}, 400)
    from . import auth

    vid = V.save_variant(studio.sdb, ctx, name, parent, files, auth.current_user(request).name)
    base_id = V.ensure_base(studio.sdb)
    return RedirectResponse(f"/preview?variant={base_id}&variant={vid}", 303)


def variant_view(request: Request, form) -> Response:
    import difflib

    from .app import render

    studio = request.app.state.studio
    ctx = studio.campaign()
    if ctx is None:
        return _no_campaign(request)
    v = V.get_variant(studio.sdb, request.path_params["vid"], ctx)
    if v is None:
        raise HTTPException(404, "No such variant.")
    if v.get("campaign_variant"):  # the campaign's own variant: its template against message.j2
        v = dict(v, files={"message.j2": (Path(ctx.campaign.prompts_dir) / v["template"]).read_text(encoding="utf-8")})
    base = V.base_files(Path(ctx.campaign.prompts_dir))
    diffs = {n: "\n".join(difflib.unified_diff(base.get(n, "").splitlines(), t.splitlines(), f"campaign/{n}",
                                               f"{v['name']}/{n}", lineterm=""))
             for n, t in v["files"].items()}
    return render(request, "variant_view.html", {"v": v, "diffs": diffs})


def run(request: Request, form) -> Response:
    import asyncio
    from urllib.parse import urlencode

    from . import auth

    studio = request.app.state.studio
    ctx = studio.campaign()
    if ctx is None:
        return _no_campaign(request)
    vids = list(dict.fromkeys(str(v) for v in form.getlist("variant")))
    mids = list(dict.fromkeys(str(m) for m in form.getlist("member")))[:MAX_MEMBERS]
    back = "/preview?" + urlencode([("variant", v) for v in vids])
    if len(vids) < 2:
        return RedirectResponse(back + "&error=" + "Choose+two+or+more+variants+to+compare.", 303)
    if not mids:
        return RedirectResponse(back + "&error=" + "Choose+at+least+one+member.", 303)
    try:
        cid = asyncio.run(V.run_comparison(studio, ctx, vids, mids, auth.current_user(request).name,
                                           str(form.get("label") or "")[:120]))
    except ValueError as e:
        return RedirectResponse(back + "&" + urlencode({"error": str(e)}), 303)
    return RedirectResponse(f"/preview/c/{cid}", 303)


def cell_view(cell: dict[str, Any] | None) -> dict[str, Any] | None:
    if cell is None:
        return None
    from .editor import view_dict

    r = cell["result"]
    rec = r.get("record") or {}
    channel = rec.get("channel") or "email"
    msg = view_dict(rec.get("message"), channel)
    attempts = r.get("attempts") or []
    fb = next((a for a in attempts if a.get("kind") == "fallback"), None)
    findings = (fb or {}).get("findings") if fb and r.get("outcome") in ("fallback", "rejected", "holdout") \
        else rec.get("findings")
    model_msg = r.get("model_message")
    failed = None
    if model_msg is not None and r.get("outcome") in ("fallback", "rejected"):
        # the variant's own text, with why it failed; the fallback the member would get goes below it
        failed = message_view(model_msg, r.get("model_findings"), r.get("names"))
    return {"outcome": r.get("outcome"), "error": r.get("error"), "view": message_view(msg, findings, r.get("names")),
            "failed": failed, "channel": channel,
            "findings_all": [(a.get("n"), a.get("kind"), a.get("findings") or []) for a in attempts],
            "prompt": r.get("prompt"), "usage": r.get("usage") or {}, "cost": cell.get("cost_usd"),
            "attempts": len([a for a in attempts if a.get("kind") != "fallback"]), "send": rec.get("send")}


def comparison(request: Request, form) -> Response:
    from .app import render

    studio = request.app.state.studio
    raw = request.path_params["cid"]
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise HTTPException(404, "No such comparison.")
    c = studio.sdb.comparison(int(raw))
    if c is None:
        raise HTTPException(404, "No such comparison.")
    ctx = studio.campaign()
    variants = [V.get_variant(studio.sdb, v, ctx) or {"id": v, "name": v, "files": {}} for v in c["variant_ids"]]
    rows = []
    totals = {v["id"]: {"prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0, "cost_known": True, "pass": 0,
                        "n": 0} for v in variants}
    for mid in c["member_ids"]:
        cells = []
        member = None
        for v in variants:
            cell = c["cells"].get((v["id"], mid))
            cv = cell_view(cell)
            if cell:
                member = member or cell["result"].get("member")
                t = totals[v["id"]]
                t["prompt_tokens"] += cell["prompt_tokens"] or 0
                t["completion_tokens"] += cell["completion_tokens"] or 0
                if cell["cost_usd"] is None:
                    t["cost_known"] = False
                else:
                    t["cost"] += cell["cost_usd"]
                t["n"] += 1
                t["pass"] += 1 if cell["outcome"] in ("approved", "repaired") else 0
            cells.append(cv)
        rows.append({"member_id": mid, "member": member or {"member_id": mid}, "cells": cells})
    return render(request, "comparison.html", {"c": c, "variants": variants, "rows": rows, "totals": totals})


def history(request: Request, form) -> Response:
    from .app import render

    studio = request.app.state.studio
    names = {v["id"]: v["name"] for v in V.list_variants(studio.sdb, studio.campaign())}
    return render(request, "history.html", {"comparisons": studio.sdb.comparisons(), "names": names})
