"""The campaign run: load -> plan -> prompt -> generate -> assemble -> gates -> decide -> export.

``Runner`` wires one campaign (store, inputs, planner, model client, decider)
and streams the members through a bounded window (``window.py``): a member
starts as soon as a slot frees, each member's plan-to-decision is one unit of
work (``outcome.py``, its own errors isolated), and finished members commit to
the run store in small transactions (``--chunk-size`` members or one second),
so a run killed at any point resumes where it stopped and never decides (or
exports) a member twice. Every model answer's usage and cost is committed as it
arrives (``spend.py``); inputs are frozen for the run (``freeze.py``); SIGINT
and SIGTERM stop it cleanly (``stops.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fcntl
import gc
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, failpoints, gates, stops
from .config import Campaign, load_campaign, require_price
from .errors import BudgetExhausted, NotARunError, ProviderUnavailable, StoreError
from .export import write_export
from .freeze import InputsChanged, InputWatch, changed_error, check_unchanged, fingerprint, input_paths
from .links import require_link_secret
from .load import MemberRow, iter_members, load_catalog, load_offers, load_suppression
from .outcome import EngineFailure, MemberWork, count_answer
from .plan import Planner, stratified_holdout
from .prompts import Prompts
from .repair import Decider
from .spend import Spend, cost_of
from .store import DATABASE_ERRORS, RunStore, has_run_store, open_run_store, run_store_location
from .window import Window

__all__ = ["CHUNK", "Progress", "RunOptions", "RunResult", "Runner", "cost_of", "count_rows", "fingerprint",
           "reexport", "run_campaign", "shard_of"]

CHUNK = 256            # members committed together at most (--chunk-size)
COMMIT_INTERVAL_S = 1.0  # ... or whatever finished within this long
GC_THRESHOLD = (20_000, 20, 20)  # the collector's thresholds while members are decided (benchmarks/RESULTS.md)


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
    chunk_size: int = CHUNK  # at most this many finished members per store transaction
    batch: bool = False  # first attempts through the Batch API
    batch_poll_s: float = 10.0
    max_cost: float | None = None
    metrics: Any = None  # contentgen.metrics.RunMetrics (run --metrics-port, OTel); None: no metrics
    window: int | None = None  # members in flight (default: 4 x concurrency + 64)
    store: str | None = None  # run store URL (sqlite:///... or postgresql://...); None: the folder's, else run.db

    @property
    def scope(self) -> str:
        """This process's part of the run in a shared (PostgreSQL) store."""
        return f"shard-{self.shard[0]}-of-{self.shard[1]}" if self.shard else ""


@dataclass
class RunResult:
    out: Path
    manifest: dict[str, Any]
    status: str  # complete | already-complete | paused | interrupted
    message: str = ""
    pending: int = 0
    exit_code: int = 0  # paused: 3 provider down, 5 spending limit; interrupted: 130 SIGINT, 143 SIGTERM


@dataclass
class Progress:
    total: int | None = None
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    on_update: Callable[[Progress, dict[str, Any]], None] | None = None
    on_close: Callable[[], None] | None = None

    def advance(self, n: int, stats: dict[str, Any]) -> None:
        self.done += n
        if self.on_update:
            self.on_update(self, stats)

    def close(self) -> None:
        if self.on_close:
            self.on_close()


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

    with local_server(gguf, deadline_s=campaign.llm.timeout_s) as url:
        yield url, None, MODEL_NAME if gguf is None else gguf.stem, True


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class _AnswerCache:
    """The generation cache's view of the store: answers are written with their ledger row (``Spend.record``),
    so the cache's own write after an answer is already done."""

    def __init__(self, store: RunStore) -> None:
        self.cache_get = store.cache_get

    def cache_put(self, key: str, value: dict[str, Any]) -> None:
        pass


class Runner:
    def __init__(self, campaign_path: Path, opts: RunOptions, progress: Progress | None = None):
        self.campaign = load_campaign(campaign_path)
        require_link_secret(self.campaign)  # unsigned unsubscribe links would let anyone unsubscribe anyone
        self.opts = opts
        self.out = Path(opts.out)
        self.progress = progress or Progress()
        from .metrics import NullMetrics

        self.metrics = opts.metrics or NullMetrics()
        # everything that can fail on bad data fails here, before any model call
        self.rules = gates.load_rules(self.campaign.rules_dirs)
        self.prompts = Prompts(self.campaign.prompts_dir, self.campaign)
        self.prompts.system()
        self.pause_code = 3
        self.window_stats: dict[str, Any] = {}

    def run(self) -> RunResult:
        guard = stops.raising_on_signals() if _main_thread() else contextlib.nullcontext()
        try:
            with guard:
                try:
                    with _run_lock(self.out):
                        return self._run()
                except DATABASE_ERRORS as e:
                    full = "full" in str(e) or "disk" in str(e)
                    loc = run_store_location(self.out)
                    raise StoreError(f"the run store failed: {e}", file=loc["url"] if loc else str(self.out / "run.db"),
                                     hint=("free disk space" if full else "check the output folder") +
                                          ", then re-run the same command to resume; decided members are kept"
                                     ) from None
                except OSError as e:
                    raise StoreError(f"cannot use the output folder ({e.strerror})",
                                     file=str(e.filename or self.out),
                                     hint="choose a writable --out folder (free disk space if it is full), then "
                                          "re-run to resume") from None
        except stops.Interrupted as e:
            return RunResult(self.out, {}, "interrupted", f"stopped by {e.signame}; members decided so far are "
                             "kept in the run store", exit_code=e.exit_code)
        finally:
            self.progress.close()

    def _run(self) -> RunResult:
        c = self.campaign
        if self.opts.restart:  # start over: the old store (even a damaged one) and its export go
            loc = run_store_location(self.out) if (self.out / "store.json").exists() else None
            if loc is not None or (self.opts.store and self.opts.store.startswith("postgres")):
                # this run's rows in the shared database go (only its scope: other shards keep theirs)
                old_store = open_run_store(self.out, self.opts.store if loc is None else None,
                                           scope=self.opts.scope if loc is None else loc["scope"])
                old_store.reset()
            for name in ("run.db", "run.db-wal", "run.db-shm", "store.json", "messages.jsonl", "manifest.json",
                         "quarantine.jsonl"):
                with contextlib.suppress(FileNotFoundError):
                    (self.out / name).unlink()
        watch = InputWatch(c)  # before hashing: a change from here on is caught by the watch or the re-hash
        fp = fingerprint(c)
        store = open_run_store(self.out, self.opts.store, scope=self.opts.scope)
        try:
            old = store.get_meta("fingerprint")
            if old:
                changed = [k for k, v in json.loads(old).items() if fp.get(k) != v]
                if changed:
                    raise changed_error(c, changed, during=False)
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
            return self._process(store, fp, watch)
        finally:
            store.close()

    def _process(self, store: RunStore, fp: dict[str, str], watch: InputWatch) -> RunResult:
        c = self.campaign
        catalog, bad_products = load_catalog(c.inputs.catalog, c.inputs.max_field_chars)
        offers, bad_offers = load_offers(c.inputs.offers, c.inputs.max_field_chars)
        suppression = load_suppression(c.inputs.suppression)
        store.add_quarantine(q.to_dict() for q in bad_products + bad_offers)
        planner = Planner(c, catalog, offers, suppression,
                          holdout=stratified_holdout(c.inputs.members, c.campaign_id, c.holdout_share))
        # rules, prompts, catalog, offers, suppression and holdout live for the whole run: move them
        # out of the collector's way, so that a full collection (one every few thousand members)
        # does not walk them again each time (~50-100 ms each; benchmarks/RESULTS.md, Gates)
        gc.freeze()
        started = time.monotonic()
        if self.progress.total is None:
            self.progress.total = count_rows(c.inputs.members, self.opts.limit)
        thresholds = gc.get_threshold()
        # fewer, larger young collections: at the default 700 allocations a member's few thousand short-lived
        # objects trigger several, and each promotes survivors that full collections then walk again
        gc.set_threshold(GC_THRESHOLD[0], max(GC_THRESHOLD[1], thresholds[1]), max(GC_THRESHOLD[2], thresholds[2]))
        try:
            with _backend(c, self.opts) as (base_url, api_key, model, is_local):
                pending, cache_stats, client_stats, paused_msg, stopped = asyncio.run(
                    self._generate_all(store, planner, catalog, offers, base_url, api_key, model, is_local, watch))
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()  # what the run froze is collectable again (a process may run more than one campaign)
        usage = store.ledger_totals()  # every answer of every process of this run, committed as it arrived
        cost = usage.pop("cost_usd")
        processes = usage.pop("processes")
        store.set_meta("usage", json.dumps(usage))
        batch_usage = json.loads(store.get_meta("batch_usage") or "{}")
        total_cost = cost + (cost_of(c, model, batch_usage, batch=True) or 0.0)
        store.set_meta("cost_usd", str(total_cost))
        manifest = {
            "campaign_id": c.campaign_id,
            "send_date": c.send_date.isoformat(),
            "contentgen_version": __version__,
            "model": model,
            "backend": "embedded llama.cpp" if is_local else base_url,
            "hashes": fp,
            "inputs": {name: ", ".join(str(p) for p in paths) for name, paths in input_paths(c).items()},
            "rule_count": len(self.rules),
            "usage": usage,
            "processes": processes,
            "cost_usd": round(total_cost, 6) if c.price_for(model) else None,
            "batch": {"usage": batch_usage, **json.loads(store.get_meta("batch_summary") or "{}")}
            if self.opts.batch or batch_usage else None,
            "shard": list(self.opts.shard) if self.opts.shard else None,
            "llm": client_stats,
            "dedup": cache_stats,
            "window": self.window_stats,
            "started_at": store.get_meta("started_at"),
            "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(),
            "wall_s": round(time.monotonic() - started, 2),
            "limit": self.opts.limit,
            "max_repairs": getattr(self, "max_repairs", c.max_repairs),
        }
        if stopped:
            store.set_meta("state", "paused")
            return RunResult(self.out, manifest, "interrupted",
                             f"stopped by {stopped}; {store.member_count():,} members decided are kept"
                             + (f", {pending:,} pending" if pending else ""), pending,
                             128 + int(getattr(__import__("signal"), stopped, 2)))
        if paused_msg or pending:
            store.set_meta("state", "paused")
            return RunResult(self.out, manifest, "paused", paused_msg or f"{pending} member(s) still pending",
                             pending, self.pause_code)
        # the inputs this export describes must be the ones the run started from
        check_unchanged(c, fp, during=True)
        manifest = write_export(self.out, store, manifest)
        store.set_meta("state", "complete")
        return RunResult(self.out, manifest, "complete")

    async def _generate_all(self, store, planner, catalog, offers, base_url, api_key, model, is_local, watch):
        from .llm.cache import GenerationCache, cache_key
        from .llm.client import LLMClient, TransportFailure, complete_counted, estimate_tokens

        c = self.campaign
        settings = c.llm
        if self.opts.concurrency:
            settings = settings.model_copy(update={"concurrency": self.opts.concurrency})
        if is_local:
            from .llm.local import client_settings

            settings = client_settings(settings)
        client_kwargs: dict[str, Any] = {"base_url": base_url, "api_key": api_key, "model": model}
        if is_local:
            client_kwargs["local_schema_hint"] = True
        client = LLMClient(settings, **client_kwargs)
        cache = GenerationCache(_AnswerCache(store))
        params = {"temperature": settings.temperature, "max_tokens": settings.max_tokens}
        spend = Spend(c, model, store, cap=self.opts.max_cost, max_tokens=settings.max_tokens)
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "requests": 0}
        if self.opts.max_cost is not None:
            require_price(c, model)              # exit 2 before any request: --max-cost needs a price
        self.metrics.attach(client=client, cache=cache, price=spend.price, model=model,  # metrics: the run's LLM client
                            campaign_id=c.campaign_id, expected=self.progress.total)

        async def generate(messages, schema):
            key = cache_key(model, params, messages, schema)

            async def produce():
                held = await spend.reserve(estimate_tokens(messages))
                got = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "requests": 0}
                try:
                    res = await self.metrics.llm_call(complete_counted(client, messages, schema, got))  # metrics:
                except BaseException:
                    spend.settle(held, 0.0)
                    raise
                for k, v in got.items():
                    usage[k] = usage.get(k, 0) + v
                reusable = bool(res.get("text")) and res.get("finish_reason") != "length"
                spend.settle(held, spend.record(key, res, got, cache=reusable))  # durable before it is used
                return res

            res, cached = await cache.get_or_create(key, produce)
            count_answer()
            self.metrics.completion(cached)  # metrics:
            failpoints.hit("generate")
            return {**res, "cached": cached}

        # the embedded 135M model almost never fixes a draft on a second repair: one repair, then fallback
        self.max_repairs = min(c.max_repairs, 1) if is_local else c.max_repairs
        # a server that turns the schema into a grammar (the embedded model, llama-cpp-python's own server) gets
        # it narrowed to each member's plan; asking the server what it is now costs nothing extra (the client
        # asks before its first completion anyway)
        grammar = is_local or (not self.opts.batch and await client.server_kind() == "llama-cpp-python")
        decider = Decider(c, self.prompts, self.rules, generate, offers, catalog, planner, self.max_repairs,
                          grammar=grammar)
        self.metrics.instrument(decider)  # metrics: the gates as a timed stage
        if self.opts.batch:
            await self._batch_prefill(store, planner, catalog, client, model, params)
        work = MemberWork(planner, decider, c.inputs.members, TransportFailure, metrics=self.metrics)
        # the model client and what it imported (the openai SDK's types: several hundred thousand objects) live
        # for the run too: out of the collector's way as well
        gc.freeze()

        def commit(rows: list[dict[str, Any]]) -> None:
            watch.check()  # an input rewritten since the last commit: commit nothing more
            with self.metrics.stage("commit"):  # metrics:
                store.save_members(rows, quarantine=[q for r in rows for q in r.pop("quarantine", ())])
            self.metrics.committed(rows)  # metrics: outcomes and findings of committed members

        last = [0.0, 0]

        def progress(n: int, res) -> None:
            last[1] += n
            now = time.monotonic()
            if now - last[0] < 0.25 and self.progress.done + last[1] != self.progress.total:
                return
            last[0] = now
            n, last[1] = last[1], 0
            self.progress.advance(n, {"pending": res.pending, **usage,
                                      "rate_limited": getattr(client.stats, "rate_limited", 0),
                                      "timeouts": getattr(client.stats, "timeouts", 0),
                                      "cost_usd": round(spend.spent, 6) if spend.price else None})

        # members waiting on a shared in-flight prompt (dedup) hold a member slot but no request slot: room for them
        slots = self.opts.window or 4 * settings.concurrency + 64
        window = Window(slots=slots, commit=commit, commit_every=self.opts.chunk_size,
                        commit_interval_s=COMMIT_INTERVAL_S, pending_types=(TransportFailure,),
                        pause_types=(ProviderUnavailable, BudgetExhausted),
                        no_flush_types=(StoreError, *DATABASE_ERRORS, OSError, EngineFailure, InputsChanged),
                        on_progress=progress)
        paused_msg = ""
        try:
            rows = iter_members(c.inputs.members, c.inputs.recommendations, catalog,
                                max_field_chars=c.inputs.max_field_chars)
            signals = stops.on_loop_signals(window.stop) if _main_thread() else contextlib.nullcontext()
            with signals:
                res = await window.run(self._todo(store, rows), work)
        finally:
            await client.aclose()
        if last[1]:
            self.progress.advance(last[1], {"pending": res.pending, **usage})
        if res.pause is not None:
            paused_msg = res.pause.render() if hasattr(res.pause, "render") else str(res.pause)
            self.pause_code = getattr(res.pause, "exit_code", 3)
        self.window_stats = {"slots": slots, "peak_members_in_flight": res.peak_in_flight,
                             "found_decided": res.skipped,
                             "commit_every": self.opts.chunk_size, "isolated_errors": work.errors}
        s = cache.stats
        cache_stats = {"lookups": s.lookups, "store_hits": s.hits_store, "inflight_hits": s.hits_inflight,
                       "model_calls": s.misses, "dedup_ratio": round(s.dedup_ratio, 4)}
        stats = client.stats
        client_stats = {k: getattr(stats, k) for k in ("requests", "retries", "rate_limited", "server_errors",
                                                        "timeouts") if hasattr(stats, k)}
        client_stats["capabilities"] = client.capabilities()   # negotiated request shape, downgrades
        return res.pending, cache_stats, client_stats, paused_msg, res.stopped

    def _todo(self, store, rows: Iterator[MemberRow]) -> Iterator[MemberRow | int]:
        """Members of this run (limit, shard) not yet decided in the store; an int for each block's decided ones."""
        for block in _chunks(rows, 256, self.opts.limit, self.opts.shard):
            done = store.done_keys(r.key for r in block)
            if done:
                yield sum(1 for r in block if r.key in done)
            for r in block:
                if r.key not in done:
                    yield r

    async def _batch_prefill(self, store, planner, catalog, client, model, params) -> None:
        """Batch mode: every pending member's first prompt through the Batch API, joined into the cache."""
        from .gates.schema import DRAFT_SCHEMA
        from .llm.batch import BatchRunner
        from .llm.cache import cache_key

        c = self.campaign
        runner = BatchRunner(store, client, model=model, params=params, out_dir=self.out,
                             poll_s=self.opts.batch_poll_s, log=lambda s: print(s, file=sys.stderr))
        # metrics: the batch's answers as requests, tokens and spend (at the batch discount)
        self.metrics.attach(batch=runner, price=c.price_for(model), batch_discount=c.batch_discount)

        def items():
            rows = iter_members(c.inputs.members, c.inputs.recommendations, catalog,
                                max_field_chars=c.inputs.max_field_chars)
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


def run_campaign(campaign_path: Path, opts: RunOptions, progress: Progress | None = None) -> RunResult:
    return Runner(campaign_path, opts, progress).run()


def reexport(out: Path) -> dict[str, Any]:
    """Rebuild the export of a finished run from its store, applying reviewers' decisions."""
    out = Path(out)
    if not has_run_store(out):
        raise NotARunError("no run store here: not a run's output folder", file=str(out),
                           hint="point it at a run's --out folder")
    with _run_lock(out):
        store = open_run_store(out)
        try:
            if store.get_meta("state") != "complete":
                raise NotARunError("this run is not complete", file=str(out),
                                 hint="finish it first: re-run the same `contentgen run` command")
            old = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
            old["reexported_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
            return write_export(out, store, old)
        finally:
            store.close()
