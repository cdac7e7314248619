"""The campaign run: load -> plan -> prompt -> generate -> assemble -> gates -> decide -> export.

Members stream through in chunks; each chunk's decisions are committed to the
run store in one transaction, so a run killed at any point resumes where it
stopped and never decides (or exports) a member twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import fcntl
import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, failpoints, gates
from .config import Campaign, load_campaign
from .errors import BudgetExhausted, ContentgenError, ProviderUnavailable, ResumeRefused, StoreError
from .export import hash_tree, sha256_file, write_export
from .load import MemberRow, iter_members, load_catalog, load_offers, load_suppression
from .plan import Planner, stratified_holdout
from .prompts import Prompts
from .repair import Decider, export_record
from .store import SqliteStore

CHUNK = 256


@dataclass
class RunOptions:
    out: Path
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    limit: int | None = None
    concurrency: int | None = None
    restart: bool = False
    gguf: Path | None = None
    shard: tuple[int, int] | None = None  # (i, n): this process runs partition i of n
    chunk_size: int = CHUNK  # members decided and committed together
    batch: bool = False  # first attempts through the Batch API
    batch_poll_s: float = 10.0
    max_cost: float | None = None
    metrics: Any = None  # contentgen.metrics.RunMetrics (run --metrics-port, OTel); None: no metrics


@dataclass
class RunResult:
    out: Path
    manifest: dict[str, Any]
    status: str  # complete | already-complete | paused
    message: str = ""
    pending: int = 0
    exit_code: int = 0  # for a paused run: 3 provider down, 5 spending limit


@dataclass
class Progress:
    total: int | None = None
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    on_update: Callable[[Progress, dict[str, Any]], None] | None = None

    def advance(self, n: int, stats: dict[str, Any]) -> None:
        self.done += n
        if self.on_update:
            self.on_update(self, stats)


def fingerprint(campaign: Campaign) -> dict[str, str]:
    """Hashes of everything that decides the output; a resumed run must match them."""
    inp = campaign.inputs
    fp = {
        "campaign": sha256_file(campaign.source) if campaign.source else "",
        "members": sha256_file(inp.members),
        "recommendations": sha256_file(inp.recommendations),
        "catalog": sha256_file(inp.catalog),
        "offers": sha256_file(inp.offers),
        "suppression": hash_tree(inp.suppression),
        "prompts": hash_tree([campaign.prompts_dir]),
        "rules": hash_tree(list(campaign.rules_dirs)),
    }
    return fp


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / ".lock"
    fh = open(path, "w")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise StoreError("another contentgen run is using this output folder", file=str(out),
                         hint="wait for it to finish, or choose another --out") from None
    try:
        yield
    finally:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


@contextlib.contextmanager
def _backend(campaign: Campaign, opts: RunOptions) -> Iterator[tuple[str, str | None, str, bool]]:
    """Yield (base_url, api_key, model, is_local). No key and no URL: the embedded model."""
    base = opts.base_url or os.environ.get("OPENAI_BASE_URL") or campaign.llm.base_url
    key = opts.api_key or os.environ.get("OPENAI_API_KEY")
    model = opts.model or (campaign.llm.model if campaign.llm.model != "embedded" else None)
    gguf = opts.gguf
    if model and model.endswith(".gguf"):
        gguf, model = Path(model), None
    if base or key:
        yield base or "https://api.openai.com/v1", key, model or "gpt-4o-mini", False
        return
    from .llm.local import MODEL_NAME, local_server

    with local_server(gguf) as url:
        yield url, None, MODEL_NAME if gguf is None else gguf.stem, True


class Runner:
    def __init__(self, campaign_path: Path, opts: RunOptions, progress: Progress | None = None):
        self.campaign = load_campaign(campaign_path)
        self.opts = opts
        self.out = Path(opts.out)
        self.progress = progress or Progress()
        from .metrics import NullMetrics

        self.metrics = opts.metrics or NullMetrics()
        # everything that can fail on bad data fails here, before any model call
        self.rules = gates.load_rules(self.campaign.rules_dirs)
        self.prompts = Prompts(self.campaign.prompts_dir, self.campaign)
        self.prompts.system()

    def run(self) -> RunResult:
        try:
            with _run_lock(self.out):
                return self._run()
        except sqlite3.OperationalError as e:
            full = "full" in str(e) or "disk" in str(e)
            raise StoreError(f"the run store failed: {e}", file=str(self.out / "run.db"),
                             hint=("free disk space" if full else "check the output folder") +
                                  ", then re-run the same command to resume; decided members are kept") from None
        except OSError as e:
            raise StoreError(f"cannot use the output folder ({e.strerror})", file=str(e.filename or self.out),
                             hint="choose a writable --out folder (free disk space if it is full), then re-run "
                                  "to resume") from None

    def _run(self) -> RunResult:
        c = self.campaign
        fp = fingerprint(c)
        if self.opts.restart:  # start over: the old store (even a damaged one) and its export go
            for name in ("run.db", "run.db-wal", "run.db-shm", "messages.jsonl", "manifest.json", "quarantine.jsonl"):
                with contextlib.suppress(FileNotFoundError):
                    (self.out / name).unlink()
        store = SqliteStore(self.out / "run.db")
        try:
            old = store.get_meta("fingerprint")
            if old:
                changed = [k for k, v in json.loads(old).items() if fp.get(k) != v]
                if changed:
                    raise ResumeRefused(f"inputs changed since this run started: {', '.join(changed)}",
                                        file=str(self.out),
                                        hint="re-run with --restart to start over, or use a new --out folder")
                if store.get_meta("state") == "complete" and (self.out / "manifest.json").exists():
                    manifest = json.loads((self.out / "manifest.json").read_text())
                    return RunResult(self.out, manifest, "already-complete",
                                     "this run is already complete; nothing to do (use --restart to run it again)")
            else:
                store.set_meta("fingerprint", json.dumps(fp))
                store.set_meta("started_at", dt.datetime.now(dt.timezone.utc).isoformat())
                store.set_meta("campaign_id", c.campaign_id)
            if c.source:
                store.set_meta("campaign_path", str(c.source))
            store.set_meta("state", "running")
            return self._process(store, fp)
        finally:
            store.close()

    def _process(self, store: SqliteStore, fp: dict[str, str]) -> RunResult:
        c = self.campaign
        catalog, bad_products = load_catalog(c.inputs.catalog)
        offers, bad_offers = load_offers(c.inputs.offers)
        suppression = load_suppression(c.inputs.suppression)
        store.add_quarantine(q.to_dict() for q in bad_products + bad_offers)
        planner = Planner(c, catalog, offers, suppression,
                          holdout=stratified_holdout(c.inputs.members, c.campaign_id, c.holdout_share))
        # rules, prompts, catalog, offers, suppression and holdout live for the whole run: move them
        # out of the collector's way, so that a full collection (one every few thousand members)
        # does not walk them again each time (~50-100 ms each; benchmarks/RESULTS.md, Gates)
        gc.freeze()
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "requests": 0}
        started = time.monotonic()
        pending = 0
        if self.progress.total is None:
            self.progress.total = count_rows(c.inputs.members, self.opts.limit)
        with _backend(c, self.opts) as (base_url, api_key, model, is_local):
            result = asyncio.run(self._generate_all(store, planner, catalog, offers, base_url, api_key, model,
                                                    is_local, usage))
            pending, cache_stats, client_stats, paused_msg = result
        # tokens and cost add up over every (paused and resumed) process of this run
        prior = json.loads(store.get_meta("usage") or "{}")
        usage = {k: usage.get(k, 0) + prior.get(k, 0) for k in set(usage) | set(prior)}
        store.set_meta("usage", json.dumps(usage))
        batch_usage = json.loads(store.get_meta("batch_usage") or "{}")
        store.set_meta("cost_usd", str((cost_of(c, model, usage) or 0.0)
                                       + (cost_of(c, model, batch_usage, batch=True) or 0.0)))
        manifest = {
            "campaign_id": c.campaign_id,
            "send_date": c.send_date.isoformat(),
            "contentgen_version": __version__,
            "model": model,
            "backend": "embedded llama.cpp" if is_local else base_url,
            "hashes": fp,
            "rule_count": len(self.rules),
            "usage": usage,
            "cost_usd": round((cost_of(c, model, usage) or 0.0) + (cost_of(c, model, batch_usage, batch=True) or 0.0),
                              6) if c.price_for(model) else None,
            "batch": {"usage": batch_usage, **json.loads(store.get_meta("batch_summary") or "{}")}
            if self.opts.batch or batch_usage else None,
            "shard": list(self.opts.shard) if self.opts.shard else None,
            "llm": client_stats,
            "dedup": cache_stats,
            "started_at": store.get_meta("started_at"),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "wall_s": round(time.monotonic() - started, 2),
            "limit": self.opts.limit,
            "max_repairs": getattr(self, "max_repairs", c.max_repairs),
        }
        if paused_msg or pending:
            store.set_meta("state", "paused")
            return RunResult(self.out, manifest, "paused", paused_msg or f"{pending} member(s) still pending",
                             pending, getattr(self, "pause_code", 3))
        manifest = write_export(self.out, store, manifest)
        store.set_meta("state", "complete")
        return RunResult(self.out, manifest, "complete")

    async def _generate_all(self, store, planner, catalog, offers, base_url, api_key, model, is_local, usage):
        from .llm.cache import GenerationCache, cache_key
        from .llm.client import LLMClient, TransportFailure, complete_counted, estimate_tokens

        c = self.campaign
        settings = c.llm
        if self.opts.concurrency:
            settings = settings.model_copy(update={"concurrency": self.opts.concurrency})
        if is_local:
            # llama.cpp serves one request at a time; one in flight keeps its prompt-prefix cache warm
            settings = settings.model_copy(update={"structured_output": "json_object", "concurrency": 1,
                                                   "max_tokens": min(settings.max_tokens, 300)})
        client_kwargs: dict[str, Any] = {"base_url": base_url, "api_key": api_key, "model": model}
        if is_local:
            client_kwargs["local_schema_hint"] = True
        client = LLMClient(settings, **client_kwargs)
        cache = GenerationCache(store)
        params = {"temperature": settings.temperature, "max_tokens": settings.max_tokens}

        price = c.price_for(model)
        self.metrics.attach(client=client, cache=cache, price=price, model=model,  # metrics: the run's LLM client
                            campaign_id=c.campaign_id, expected=self.progress.total)
        spent_before = float(store.get_meta("cost_usd") or 0.0)  # what earlier (paused) runs of this store spent

        async def generate(messages, schema):
            key = cache_key(model, params, messages, schema)

            async def produce():
                if self.opts.max_cost is not None and price is not None:
                    est_in = estimate_tokens(messages)
                    nxt = (est_in * price.input + settings.max_tokens * price.output) / 1e6
                    spent = spent_before + (cost_of(c, model, usage) or 0.0)
                    if spent + nxt > self.opts.max_cost:
                        raise BudgetExhausted(f"spending limit reached: ${spent:.4f} spent, the next request could "
                                              f"pass --max-cost ${self.opts.max_cost:.4f}",
                                              hint="raise --max-cost and re-run the same command to continue")
                return await self.metrics.llm_call(complete_counted(client, messages, schema, usage))  # metrics:

            res, cached = await cache.get_or_create(key, produce)
            self.metrics.completion(cached)  # metrics:
            failpoints.hit("generate")
            return {**res, "cached": cached}

        # the embedded 135M model almost never fixes a draft on a second repair: one repair, then fallback
        self.max_repairs = min(c.max_repairs, 1) if is_local else c.max_repairs
        decider = Decider(c, self.prompts, self.rules, generate, offers, catalog, planner, self.max_repairs)
        self.metrics.instrument(decider)  # metrics: the gates as a timed stage
        if self.opts.batch:
            await self._batch_prefill(store, planner, catalog, client, model, params)
        pending = 0
        paused_msg = ""
        try:
            rows = iter_members(c.inputs.members, c.inputs.recommendations, catalog)
            for chunk in _chunks(rows, self.opts.chunk_size, self.opts.limit, self.opts.shard):
                done = store.done_keys(r.key for r in chunk)
                todo = [r for r in chunk if r.key not in done]
                if not todo:
                    self.progress.advance(len(chunk), {})
                    continue
                saved, failed, outage = await self._decide_chunk(todo, planner, decider, TransportFailure)
                store.add_quarantine(q.to_dict() for r in todo for q in r.quarantined)
                with self.metrics.stage("commit"):  # metrics:
                    store.save_members(saved)
                self.metrics.committed(saved)  # metrics: outcomes and findings of committed members
                pending += failed
                self.progress.advance(len(chunk), {"pending": pending, **usage,
                                                   "rate_limited": getattr(client.stats, "rate_limited", 0),
                                                   "cost_usd": cost_of(c, model, usage)})
                if outage is not None:
                    paused_msg = outage.render()
                    self.pause_code = outage.exit_code
                    break
        finally:
            await client.aclose()
        s = cache.stats
        cache_stats = {"lookups": s.lookups, "store_hits": s.hits_store, "inflight_hits": s.hits_inflight,
                       "model_calls": s.misses, "dedup_ratio": round(s.dedup_ratio, 4)}
        stats = client.stats
        client_stats = {k: getattr(stats, k) for k in ("requests", "retries", "rate_limited", "server_errors",
                                                        "timeouts") if hasattr(stats, k)}
        return pending, cache_stats, client_stats, paused_msg

    async def _batch_prefill(self, store, planner, catalog, client, model, params) -> None:
        """Batch mode: every pending member's first prompt through the Batch API, joined into the cache."""
        from .gates.schema import DRAFT_SCHEMA
        from .llm.batch import BatchRunner
        from .llm.cache import cache_key

        c = self.campaign
        runner = BatchRunner(store, client, model=model, params=params, out_dir=self.out,
                             poll_s=self.opts.batch_poll_s, log=lambda s: print(s, file=sys.stderr))

        def items():
            rows = iter_members(c.inputs.members, c.inputs.recommendations, catalog)
            for chunk in _chunks(rows, 2048, self.opts.limit, self.opts.shard):
                done = store.done_keys(r.key for r in chunk)
                for r in chunk:
                    if r.member is None or r.key in done:
                        continue
                    plan = planner.plan(r.member, r.recommendations, recently_bought=r.recently_bought,
                                        returned=r.returned)
                    if plan.action != "send":
                        continue
                    msgs = self.prompts.build(plan).messages()
                    yield cache_key(model, params, msgs, DRAFT_SCHEMA), msgs, DRAFT_SCHEMA

        runner.write_requests(items())
        await runner.submit()
        await runner.wait_and_join()
        prior = json.loads(store.get_meta("batch_usage") or "{}")
        total = {k: prior.get(k, 0) + v for k, v in runner.usage.items()}
        store.set_meta("batch_usage", json.dumps(total))
        store.set_meta("batch_summary", json.dumps(runner.summary()))

    async def _decide_chunk(self, rows: list[MemberRow], planner: Planner, decider: Decider, transport_exc):
        saved: list[dict[str, Any]] = []
        tasks = []
        for r in rows:
            if r.member is None:
                q = r.quarantined[0]
                saved.append({"member_key": r.key, "seq": r.seq, "member_id": q.member_id, "outcome": "invalid",
                              "record": {"member_id": q.member_id, "member_key": r.key, "outcome": "invalid",
                                         "send": False, "reason": q.reason, "quarantine": q.to_dict(),
                                         "message": None, "findings": []}})
                continue
            m = self.metrics.member(r.key)  # metrics: the member's span and timer
            with m.stage("plan"):  # metrics:
                plan = planner.plan(r.member, r.recommendations, recently_bought=r.recently_bought,
                                    returned=r.returned)
            failpoints.hit("plan")
            if plan.action == "suppress":
                m.end("suppressed")  # metrics:
                rec = export_record(plan, None, outcome="suppressed", reason=plan.reason)
                saved.append(self._row(r, "suppressed", rec, []))
                continue
            tasks.append((r, plan, asyncio.ensure_future(m.run(decider.decide(plan)))))  # metrics: m.run
        failed = 0
        outage = None
        if tasks:
            await asyncio.wait([t for _, _, t in tasks])
        for r, plan, t in tasks:
            exc = t.exception()
            if exc is None:
                d = t.result()
                rec = export_record(plan, d, reason=plan.reason, variant=plan.variant)
                saved.append(self._row(r, d.outcome, rec, d.attempts))
            elif isinstance(exc, (ProviderUnavailable, BudgetExhausted)):
                failed += 1
                outage = exc
            elif isinstance(exc, transport_exc):
                failed += 1  # stays pending: the provider failed, not the content
            elif isinstance(exc, ContentgenError):
                raise exc
            else:
                raise exc
        return saved, failed, outage

    @staticmethod
    def _row(r: MemberRow, outcome: str, rec: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
        m = r.member
        return {"member_key": r.key, "seq": r.seq, "member_id": m.member_id if m else None, "outcome": outcome,
                "segment": m.segment if m else None, "tier": m.opt_in_tier if m else None, "record": rec,
                "attempts": attempts}


def count_rows(path: Path, limit: int | None = None) -> int | None:
    """Member rows in the input (for progress ETA); cheap: newline count or Parquet metadata."""
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            n = pq.ParquetFile(path).metadata.num_rows
        else:
            with open(path, "rb") as fh:
                n = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 22), b""))
            n -= 1 if path.suffix.lower() == ".csv" else 0
    except OSError:
        return None
    return min(n, limit) if limit else n


def shard_of(key: str, n: int) -> int:
    """Stable member-id hash partition (the same on every machine and Python)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") % n


def _chunks(rows: Iterator[MemberRow], size: int, limit: int | None,
            shard: tuple[int, int] | None = None) -> Iterator[list[MemberRow]]:
    buf: list[MemberRow] = []
    n = 0
    for r in rows:
        if limit is not None and n >= limit:
            break
        if shard is not None and shard_of(r.key, shard[1]) != shard[0]:
            continue
        buf.append(r)
        n += 1
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def cost_of(campaign: Campaign, model: str | None, usage: dict[str, int], batch: bool = False) -> float | None:
    price = campaign.price_for(model)
    if price is None:
        return None
    cached = usage.get("cached_tokens", 0)
    fresh = max(0, usage.get("prompt_tokens", 0) - cached)
    cost = (fresh * price.input + cached * price.cached_input + usage.get("completion_tokens", 0) * price.output) / 1e6
    return round(cost * (campaign.batch_discount if batch else 1.0), 6)


def run_campaign(campaign_path: Path, opts: RunOptions, progress: Progress | None = None) -> RunResult:
    return Runner(campaign_path, opts, progress).run()


def reexport(out: Path) -> dict[str, Any]:
    """Rebuild the export of a finished run from its store, applying reviewers' decisions."""
    out = Path(out)
    if not (out / "run.db").exists():
        raise StoreError("no run store here", file=str(out), hint="point it at a run's --out folder")
    with _run_lock(out):
        store = SqliteStore(out / "run.db")
        try:
            if store.get_meta("state") != "complete":
                raise StoreError("this run is not complete", file=str(out),
                                 hint="finish it first: re-run the same `contentgen run` command")
            old = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
            old["reexported_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
            return write_export(out, store, old)
        finally:
            store.close()
