"""Prompt variants and side-by-side generation for the copywriter preview.

A variant is a set of file overrides on the campaign's prompts folder
(``message.j2``, ``system.j2``, ``explanation.j2``, ``repair.j2``,
``framings.yaml``), saved in the store (``studio_variants``) under the hash of
its overrides and materialised as ``RUN_DIR/variants/<id>/`` when used. The
campaign's own prompts are the variant with no overrides.

Generation goes through the batch job's path: Planner (with the variant's
framings) -> Prompts (the variant's templates) -> the model via LLMClient ->
assemble -> gates -> repair/fallback (``repair.Decider``). Each result, with its
tokens and cost, is saved in ``studio_previews`` under a comparison id.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from ..errors import ContentgenError
from ..llm.client import complete_counted
from ..plan import Framings, Planner
from ..prompts import Prompts
from ..repair import Decider, export_record

EDITABLE = ("message.j2", "system.j2", "explanation.j2", "repair.j2", "framings.yaml")
BASE_NAME = "campaign prompts"


def variant_id(files: dict[str, str]) -> str:
    blob = json.dumps(dict(sorted(files.items())), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def base_files(prompts_dir: Path) -> dict[str, str]:
    return {n: (prompts_dir / n).read_text(encoding="utf-8") for n in EDITABLE if (prompts_dir / n).exists()}


def list_variants(db) -> list[dict[str, Any]]:
    out = []
    for vid, name, parent, files, by, at in db.execute(
            "SELECT id, name, parent, files, created_by, created_at FROM studio_variants ORDER BY created_at, id"):
        out.append({"id": vid, "name": name, "parent": parent, "files": json.loads(files), "created_by": by,
                    "created_at": at})
    return out


def get_variant(db, vid: str) -> dict[str, Any] | None:
    return next((v for v in list_variants(db) if v["id"] == vid), None)


def ensure_base(db) -> str:
    vid = variant_id({})
    db.execute("INSERT OR IGNORE INTO studio_variants VALUES (?,?,?,?,?,?)",
               (vid, BASE_NAME, None, "{}", "studio", time.time()))
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


def validate(ctx, run_dir: Path, files: dict[str, str]) -> str | None:
    """None if the variant's templates load and render the worked example; else the error, with file and line."""
    try:
        d = materialize(ctx, run_dir, files)
        p = Prompts(d, ctx.campaign)
        p.system()
        Framings.load(d / "framings.yaml")
    except ContentgenError as e:
        shutil.rmtree(Path(run_dir) / "variants" / variant_id(files), ignore_errors=True)
        return e.render()
    except Exception as e:  # a broken framings.yaml, say
        shutil.rmtree(Path(run_dir) / "variants" / variant_id(files), ignore_errors=True)
        return f"{type(e).__name__}: {e}"
    return None


def save_variant(db, ctx, name: str, parent: str | None, edited: dict[str, str], user: str) -> str:
    base = base_files(Path(ctx.campaign.prompts_dir))
    overrides = {k: v for k, v in edited.items() if k in EDITABLE and v.replace("\r\n", "\n") != base.get(k)}
    overrides = {k: v.replace("\r\n", "\n") for k, v in overrides.items()}
    vid = variant_id(overrides)
    db.execute("INSERT OR IGNORE INTO studio_variants VALUES (?,?,?,?,?,?)",
               (vid, name.strip() or f"variant {vid[:6]}", parent, json.dumps(overrides, ensure_ascii=False), user,
                time.time()))
    return vid


def import_dir(db, ctx, variants_dir: Path) -> list[str]:
    """Each sub-folder of ``variants_dir`` holding prompt files becomes a variant named after it."""
    ids = []
    for sub in sorted(p for p in Path(variants_dir).iterdir() if p.is_dir()):
        files = {n: (sub / n).read_text(encoding="utf-8") for n in EDITABLE if (sub / n).exists()}
        if files:
            ids.append(save_variant(db, ctx, sub.name, None, files, "variants-dir"))
    return ids


# ------------------------------------------------------------------------------------------ generation


async def generate_cell(ctx, prompts_dir: Path, member_id: str, variant: str, client, model: str) -> dict[str, Any]:
    """One member x one variant, through the batch job's decide path. Never raises for content problems."""
    from ..pipeline import cost_of
    from .campaign import churn_band

    c = ctx.campaign
    row = ctx.member_row(member_id)
    if row is None:
        return {"error": f"member {member_id} is not in the campaign's members file", "outcome": None}
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "requests": 0}
    try:
        prompts = Prompts(prompts_dir, c)
        planner = Planner(c, ctx.catalog, ctx.offers, ctx.suppression, Framings.load(prompts_dir / "framings.yaml"))
        plan = planner.plan(row.member, row.recommendations)
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
    except ContentgenError as e:
        return {"error": e.render(), "outcome": None, "member": member, "usage": usage}
    rec = export_record(plan, d, reason=plan.reason, variant=variant)
    prompt = prompts.build(plan).user if plan.action == "send" else None
    return {"outcome": d.outcome, "member": member, "record": rec, "attempts": d.attempts, "prompt": prompt,
            "names": {pp.product.product_id: pp.product.name for pp in plan.products},
            "usage": usage, "cost_usd": cost_of(c, model, usage)}


async def run_comparison(studio, ctx, variant_ids: list[str], member_ids: list[str], user: str,
                         label: str = "") -> int:
    from ..llm.client import LLMClient

    db = studio.db
    variants = [get_variant(db, v) for v in variant_ids]
    if any(v is None for v in variants):
        raise ValueError("unknown variant")
    dirs = {v["id"]: materialize(ctx, studio.run_dir, v["files"]) for v in variants}
    base_url, api_key, model, is_local = await asyncio.to_thread(ctx.backend)
    settings = ctx.campaign.llm
    if is_local:
        settings = settings.model_copy(update={"structured_output": "json_object",
                                               "concurrency": min(settings.concurrency, 2)})
    kwargs: dict[str, Any] = {"base_url": base_url, "api_key": api_key, "model": model}
    if is_local:
        kwargs["local_schema_hint"] = True
    client = LLMClient(settings, **kwargs)
    studio.metrics.attach(client=client, price=ctx.campaign.price_for(model))  # the preview's requests in /metrics
    try:
        cells = [(v["id"], mid) for mid in member_ids for v in variants]
        results = await asyncio.gather(*(generate_cell(ctx, dirs[vid], mid, vid, client, model) for vid, mid in cells))
    finally:
        await client.aclose()
    now = time.time()
    cur = db.execute("INSERT INTO studio_comparisons (label, created_by, created_at, variant_ids, member_ids) "
                     "VALUES (?,?,?,?,?)", (label, user, now, json.dumps(variant_ids), json.dumps(member_ids)))
    cid = int(cur.lastrowid)
    db.executemany("INSERT INTO studio_previews VALUES (?,?,?,?,?,?,?,?,?)",
                   [(cid, vid, mid, r.get("outcome"), json.dumps(r, ensure_ascii=False, default=str),
                     (r.get("usage") or {}).get("prompt_tokens", 0), (r.get("usage") or {}).get("completion_tokens", 0),
                     r.get("cost_usd"), now) for (vid, mid), r in zip(cells, results)])
    return cid


def load_comparison(db, cid: int) -> dict[str, Any] | None:
    row = db.execute("SELECT id, label, created_by, created_at, variant_ids, member_ids FROM studio_comparisons "
                     "WHERE id = ?", (cid,)).fetchone()
    if row is None:
        return None
    cells = {}
    for vid, mid, outcome, result, pt, ct, cost in db.execute(
            "SELECT variant_id, member_id, outcome, result, prompt_tokens, completion_tokens, cost_usd "
            "FROM studio_previews WHERE comparison_id = ?", (cid,)):
        cells[(vid, mid)] = {"outcome": outcome, "result": json.loads(result), "prompt_tokens": pt,
                             "completion_tokens": ct, "cost_usd": cost}
    return {"id": row[0], "label": row[1], "created_by": row[2], "created_at": row[3],
            "variant_ids": json.loads(row[4]), "member_ids": json.loads(row[5]), "cells": cells}


def list_comparisons(db, limit: int = 100) -> list[dict[str, Any]]:
    out = []
    for cid, label, by, at, vids, mids in db.execute(
            "SELECT id, label, created_by, created_at, variant_ids, member_ids FROM studio_comparisons "
            "ORDER BY id DESC LIMIT ?", (limit,)):
        out.append({"id": cid, "label": label, "created_by": by, "created_at": at, "variant_ids": json.loads(vids),
                    "member_ids": json.loads(mids)})
    return out
