"""``run --dry-run``: load, plan and render every prompt without calling a model.

Streams members in file order with bounded memory (prompt hashes only, 16
bytes each, for the dedup ratio) and reports outcomes of the plan stage,
token estimates and the projected cost for live and Batch API modes, and how
delivery days meet offers: members delivered after the send date, those for
whom an offer valid on the send date had ended by their delivery day (it is
not offered to them), and those whose message lands on an offer's last day.
"""

from __future__ import annotations

import hashlib
import resource
import time
from collections import Counter
from pathlib import Path
from typing import Any

from . import gates
from .config import load_campaign
from .llm.client import estimate_tokens
from .load import iter_members, load_catalog, load_offers, load_suppression
from .pipeline import shard_of
from .plan import Planner, delivery_date, offer_audience_ok, stratified_holdout
from .prompts import Prompts


def dry_run(campaign_path: Path, *, limit: int | None = None, model: str | None = None,
            shard: tuple[int, int] | None = None, progress=None) -> dict[str, Any]:
    t0 = time.monotonic()
    c = load_campaign(campaign_path)
    gates.load_rules(c.rules_dirs)
    prompts = Prompts(c.prompts_dir, c)
    catalog, bad_products = load_catalog(c.inputs.catalog, c.inputs.max_field_chars)
    offers, bad_offers = load_offers(c.inputs.offers, c.inputs.max_field_chars)
    planner = Planner(c, catalog, offers, load_suppression(c.inputs.suppression),
                      holdout=stratified_holdout(c.inputs.members, c.campaign_id, c.holdout_share))
    counts: Counter[str] = Counter()
    quarantined = 0
    unique: set[bytes] = set()
    prompt_tokens = 0
    static_tokens = 0
    to_generate = 0
    n = 0
    later = ended = last_day = 0  # delivered after send_date; an offer ended before delivery; on its last day
    for row in iter_members(c.inputs.members, c.inputs.recommendations, catalog,
                            max_field_chars=c.inputs.max_field_chars):
        if limit is not None and n >= limit:
            break
        if shard is not None and shard_of(row.key, shard[1]) != shard[0]:
            continue
        n += 1
        quarantined += len(row.quarantined)
        if row.member is None:
            counts["invalid"] += 1
            continue
        plan = planner.plan(row.member, row.recommendations, recently_bought=row.recently_bought,
                            returned=row.returned)
        if plan.action == "suppress":
            counts["suppressed"] += 1
            continue
        if plan.action == "holdout":
            counts["holdout"] += 1
            continue
        if plan.lever_cell == "content":  # per-lever holdout: the pre-approved template, no model call
            counts["template"] += 1
            continue
        counts["to_generate"] += 1
        to_generate += 1
        day = delivery_date(plan)
        if day is not None and day > c.send_date:
            later += 1
            threshold = planner.framings.churn_threshold
            ended += any(o.valid_until < day and offer_audience_ok(o, row.member, threshold)
                         for o in planner.offers_today)
        carried = list(plan.offers) + [pp.offer for pp in plan.products if pp.offer is not None]
        last_day += any(o.valid_until == day for o in carried)
        pair = prompts.build(plan)
        msgs = pair.messages()
        digest = hashlib.blake2b(repr(msgs).encode(), digest_size=16).digest()
        if digest not in unique:
            unique.add(digest)
            prompt_tokens += estimate_tokens(msgs)
            static_tokens += estimate_tokens(msgs[:-1])
        if progress and n % 50_000 == 0:
            progress(n)
    model = model or (c.llm.model if c.llm.model != "embedded" else "gpt-4o-mini")
    price = c.price_for(model)
    calls = len(unique)
    out_tokens = calls * c.expected_output_tokens
    est: dict[str, Any] = {"model": model, "model_calls": calls, "prompt_tokens": prompt_tokens,
                           "cacheable_prefix_tokens": static_tokens, "output_tokens": out_tokens}
    if price is not None:
        # the static prefix (system prompt + worked example) is billed at the cached rate after the first call
        fresh = prompt_tokens - static_tokens + (static_tokens // max(calls, 1))
        cached = prompt_tokens - fresh
        live = (fresh * price.input + cached * price.cached_input + out_tokens * price.output) / 1e6
        batch = (prompt_tokens * price.input + out_tokens * price.output) / 1e6 * c.batch_discount
        est.update({"cost_live_usd": round(live, 2), "cost_batch_usd": round(batch, 2),
                    "note": "first attempts only; repairs add to this"})
    return {
        "campaign_id": c.campaign_id,
        "members": n,
        "plan": dict(counts),
        "quarantined_rows": quarantined + len(bad_products) + len(bad_offers),
        # offers are checked on each member's local delivery day (send_at_utc), not only on send_date
        "delivery": {"after_send_date": later, "offer_ended_before_delivery": ended,
                     "offer_on_its_last_day": last_day},
        "dedup_ratio": round(1 - calls / to_generate, 4) if to_generate else 0.0,
        "estimate": est,
        "wall_s": round(time.monotonic() - t0, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
