"""Prompt variants and side-by-side generation for the copywriter preview.

A variant is a set of file overrides on the campaign's prompts folder
(``message.j2``, ``system.j2``, ``explanation.j2``, ``repair.j2``,
``framings.yaml``), saved in the store (``studio_variants``) under the hash of
its overrides and materialised as ``RUN_DIR/variants/<id>/`` when used. The
campaign's own prompts are the variant with no overrides.

The campaign's own ``variants:`` (a template and framing table each) are
offered as ``campaign:<name>``. Generation goes through the batch job's path:
Planner (with the variant's framings) -> Prompts (the variant's templates,
rendered time- and size-bounded in ``sandbox.RenderWorker``) -> the model via
LLMClient -> assemble -> gates -> repair/fallback (``repair.Decider``). A
message that fails keeps its model text and findings next to the fallback the
member would get. Each result, with its tokens and cost, is saved in
``studio_previews`` under a comparison id.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import ContentgenError
from ..llm.client import complete_counted
from ..plan import Framings, Planner
from ..repair import Decider, export_record

EDITABLE = ("message.j2", "system.j2", "explanation.j2", "repair.j2", "framings.yaml")
BASE_NAME = "campaign prompts"


def variant_id(files: dict[str, str]) -> str:
    blob = json.dumps(dict(sorted(files.items())), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def base_files(prompts_dir: Path) -> dict[str, str]:
    return {n: (prompts_dir / n).read_text(encoding="utf-8") for n in EDITABLE if (prompts_dir / n).exists()}


CAMPAIGN = "campaign:"
MAX_FILE = 64 * 1024


def campaign_variants(ctx) -> list[dict[str, Any]]:
    """The campaign file's own variants (template + framing table), as preview variants."""
    return [{"id": CAMPAIGN + v.name, "name": f"{v.name} (campaign variant)", "parent": None, "files": {},
             "created_by": "campaign", "created_at": None, "campaign_variant": v.name, "template": v.template,
             "framings": v.framings, "weight": v.weight} for v in ctx.campaign.variants]


def list_variants(sdb, ctx=None) -> list[dict[str, Any]]:
    saved = sdb.variants()
    return (campaign_variants(ctx) if ctx is not None else []) + saved


def get_variant(sdb, vid: str, ctx=None) -> dict[str, Any] | None:
    if vid.startswith(CAMPAIGN):
        return next((v for v in campaign_variants(ctx) if v["id"] == vid), None) if ctx is not None else None
    return sdb.variant(vid)


def ensure_base(sdb) -> str:
    vid = variant_id({})
    sdb.variant_add(vid, BASE_NAME, None, {}, "studio")
    return vid


def materialize(ctx, run_dir: Path, files: dict[str, str]) -> Path:
    """RUN_DIR/variants/<id>/: a copy of the campaign's prompts with the overrides written over it."""
    base = Path(ctx.campaign.prompts_dir)
    if not files:
        return base
    vid = variant_id(files)
    target = Path(run_dir) / "variants" / vid
    if not (target / ".complete").exists():
        tmp = target.with_name(f".{vid}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(base, tmp, ignore=shutil.ignore_patterns("__pycache__"))
        for name, text in files.items():
            if name not in EDITABLE:
                continue
            (tmp / name).write_text(text, encoding="utf-8")
        (tmp / ".complete").write_text(vid)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


def validate(ctx, run_dir: Path, files: dict[str, str], worker) -> str | None:
    """None if the variant's templates load and render the worked example (time- and size-bounded);
    else the error, with file and line."""
    from .sandbox import BoundedPrompts

    big = [n for n, t in files.items() if len(t.encode()) > MAX_FILE]
    if big:
        return f"{', '.join(big)}: a prompt file may be at most {MAX_FILE // 1024} KiB"
    try:
        d = materialize(ctx, run_dir, files)
        p = BoundedPrompts(d, ctx.campaign, worker)
        p.system()
        Framings.load(d / "framings.yaml")
    except ContentgenError as e:
        shutil.rmtree(Path(run_dir) / "variants" / variant_id(files), ignore_errors=True)
        return e.render()
    except Exception as e:  # a broken framings.yaml, say
        shutil.rmtree(Path(run_dir) / "variants" / variant_id(files), ignore_errors=True)
        return f"{type(e).__name__}: {e}"
    return None


def save_variant(sdb, ctx, name: str, parent: str | None, edited: dict[str, str], user: str) -> str:
    base = base_files(Path(ctx.campaign.prompts_dir))
    overrides = {k: v for k, v in edited.items() if k in EDITABLE and v.replace("\r\n", "\n") != base.get(k)}
    overrides = {k: v.replace("\r\n", "\n") for k, v in overrides.items()}
    vid = variant_id(overrides)
    sdb.variant_add(vid, name.strip() or f"variant {vid[:6]}", parent, overrides, user)
    return vid


def import_dir(sdb, ctx, variants_dir: Path) -> list[str]:
    """Each sub-folder of ``variants_dir`` holding prompt files becomes a variant named after it."""
    ids = []
    for sub in sorted(p for p in Path(variants_dir).iterdir() if p.is_dir()):
        files = {n: (sub / n).read_text(encoding="utf-8") for n in EDITABLE if (sub / n).exists()}
        if files:
            ids.append(save_variant(sdb, ctx, sub.name, None, files, "variants-dir"))
    return ids


# ------------------------------------------------------------------------------------------ generation


def _failed_model_text(ctx, plan, attempts: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list]:
    """The last model attempt that failed, assembled as the member would have got it, and its findings."""
    from .campaign import message_dict

    for a in reversed(attempts):
        if a.get("kind") == "fallback":
            continue
        try:
            msg = ctx.assemble_draft(plan, a.get("response"))
        except Exception:  # noqa: BLE001
            msg = None
        return (message_dict(msg) if msg is not None else None), a.get("findings") or []
    return None, []


async def generate_cell(ctx, prompts_dir: Path, member_id: str, variant: dict[str, Any], client, model: str,
                        worker) -> dict[str, Any]:
    """One member x one variant, through the batch job's decide path. Never raises for content problems."""
    from ..pipeline import cost_of
    from .campaign import churn_band
    from .sandbox import BoundedPrompts

    c = ctx.campaign
    row = ctx.member_row(member_id)
    if row is None:
        return {"error": f"member {member_id} is not in the campaign's members file", "outcome": None}
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "requests": 0}
    cv = variant.get("campaign_variant")
    try:
        prompts = BoundedPrompts(prompts_dir, c, worker)
        framings = Framings.load(prompts_dir / (variant.get("framings") or "framings.yaml"))
        planner = Planner(c, ctx.catalog, ctx.offers, ctx.suppression, Framings.load(prompts_dir / "framings.yaml"))
        plan = planner.plan(row.member, row.recommendations, recently_bought=row.recently_bought,
                            returned=row.returned)
        if plan.action == "send":  # this variant for every member of the comparison
            plan = plan.model_copy(update={"variant": cv or "default", "framing": framings.framing_for(row.member)})
    except ContentgenError as e:
        return {"error": e.render(), "outcome": None}

    async def generate(messages, schema):
        return {**await complete_counted(client, messages, schema, usage), "cached": False}

    member = {"member_id": row.member.member_id, "segment": row.member.segment, "tier": row.member.opt_in_tier,
              "churn": churn_band(row.member.churn_risk)}
    if plan.action == "suppress":
        return {"outcome": "suppressed", "member": member, "record": export_record(plan, None, outcome="suppressed",
                                                                                   reason=plan.reason), "usage": usage}
    decider = Decider(c, prompts, ctx.rules, generate, ctx.offers, ctx.catalog, planner)
    try:
        d = await decider.decide(plan)
        prompt = prompts.build(plan).user if plan.action == "send" else None
    except ContentgenError as e:
        return {"error": e.render(), "outcome": None, "member": member, "usage": usage}
    rec = export_record(plan, d, reason=plan.reason, variant=variant["id"])
    out = {"outcome": d.outcome, "member": member, "record": rec, "attempts": d.attempts, "prompt": prompt,
           "names": {pp.product.product_id: pp.product.name for pp in plan.products},
           "usage": usage, "cost_usd": cost_of(c, model, usage)}
    if d.outcome in ("fallback", "rejected", "review"):
        out["model_message"], out["model_findings"] = _failed_model_text(ctx, plan, d.attempts)
    return out


async def run_comparison(studio, ctx, variant_ids: list[str], member_ids: list[str], user: str,
                         label: str = "") -> int:
    from ..llm.client import LLMClient

    sdb = studio.sdb
    variants = [get_variant(sdb, v, ctx) for v in variant_ids]
    if any(v is None for v in variants):
        raise ValueError("unknown variant")
    dirs = {v["id"]: materialize(ctx, studio.run_dir, v["files"]) for v in variants}
    base_url, api_key, model, is_local = ctx.backend()
    settings = ctx.campaign.llm
    if is_local:
        settings = settings.model_copy(update={"structured_output": "json_object",
                                               "concurrency": min(settings.concurrency, 2)})
    kwargs: dict[str, Any] = {"base_url": base_url, "api_key": api_key, "model": model}
    if is_local:
        kwargs["local_schema_hint"] = True
    client = LLMClient(settings, **kwargs)
    studio.metrics.attach(client=client, price=ctx.campaign.price_for(model))  # the preview's requests in /metrics
    worker = studio.render_worker()
    by_id = {v["id"]: v for v in variants}
    try:
        cells = [(v["id"], mid) for mid in member_ids for v in variants]
        results = await asyncio.gather(*(generate_cell(ctx, dirs[vid], mid, by_id[vid], client, model, worker)
                                         for vid, mid in cells))
    finally:
        await client.aclose()
    return sdb.comparison_add(label, user, variant_ids, member_ids,
                              [(vid, mid, r) for (vid, mid), r in zip(cells, results)])
