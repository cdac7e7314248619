"""Job metrics: Prometheus metrics of a run (``run --metrics-port``, the studio's ``/metrics``) and
OpenTelemetry spans per member stage (when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set).

The pipeline talks to one small object, :class:`RunMetrics`, at a few marked
points (``# metrics:`` comments in ``pipeline.py``)::

    metrics.attach(client=..., cache=..., price=...)  # the LLM client's counters, read at scrape time
    m = metrics.member(key)                           # a member's span (trace root) and timer
    with m.stage("plan"): ...                         # a stage: histogram + child span
    await m.run(decider.decide(plan))                 # in flight while deciding; outcome on the span
    m.end("suppressed")                               # a member that is not decided by the model
    await metrics.llm_call(coro)                      # one completion: latency, tokens, cost, span
    metrics.instrument(decider)                       # the gates as a stage
    with metrics.stage("commit"): store.save_members(saved); metrics.committed(saved)

Metrics (all prefixed ``contentgen_``): ``members_total{outcome}`` (counted when
committed to the run store, so a resumed run never counts a member twice),
``llm_requests_total`` / ``llm_rate_limited_total`` (429s) / ``llm_retries_total``
/ ``llm_server_errors_total`` / ``llm_timeouts_total`` (HTTP attempts, from the
client), ``llm_completions_total{source=model|cache}``, ``llm_tokens_total{kind}``,
``llm_cost_usd_total``, ``members_in_flight``, ``llm_requests_in_flight``,
``gate_findings_total{rule_id,gate,severity}``, ``stage_seconds{stage}`` and
``llm_request_seconds`` histograms, ``run_members_expected`` and ``run_info``. With ``--batch``, the Batch API's answers
count in the same requests, tokens and cost families (``attach(batch=runner)``).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .models import OUTCOMES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)
_CLIENT_COUNTERS = (("requests", "llm_requests", "HTTP requests sent to the LLM provider (each retry counts)"),
                    ("rate_limited", "llm_rate_limited", "429 answers from the LLM provider"),
                    ("retries", "llm_retries", "requests retried after a transient failure"),
                    ("server_errors", "llm_server_errors", "5xx answers from the LLM provider"),
                    ("timeouts", "llm_timeouts", "requests that timed out"),
                    ("connection_errors", "llm_connection_errors", "requests that could not connect"))


class _ClientCollector:
    """The LLM clients' own counters (``ClientStats``: requests, 429s, retries, tokens), summed when Prometheus
    scrapes, and the spend they come to at the campaign's prices (the manifest's ``cost_usd`` formula)."""

    def __init__(self) -> None:
        self.stats: list[tuple[Any, Any]] = []  # (ClientStats, Price or None)
        self._lock = threading.Lock()

    def add(self, stats: Any, price: Any = None) -> None:
        with self._lock:
            self.stats.append((stats, price))

    def collect(self):
        with self._lock:
            stats = list(self.stats)
        for attr, name, doc in _CLIENT_COUNTERS:
            c = CounterMetricFamily(f"contentgen_{name}", doc)
            c.add_metric([], float(sum(getattr(s, attr, 0) or 0 for s, _ in stats)))
            yield c
        tokens = CounterMetricFamily("contentgen_llm_tokens", "Tokens the provider reported (cached: prompt tokens "
                                     "served from the provider's prompt cache)", labels=["kind"])
        for kind in ("prompt", "completion", "cached"):
            tokens.add_metric([kind], float(sum(getattr(s, f"{kind}_tokens", 0) or 0 for s, _ in stats)))
        yield tokens
        cost = CounterMetricFamily("contentgen_llm_cost_usd", "Spend at the campaign's price table (USD)")
        total = 0.0
        for s, p in stats:
            if p is not None:
                pt, ct, cached = (getattr(s, f"{k}_tokens", 0) or 0 for k in ("prompt", "completion", "cached"))
                total += (max(0, pt - cached) * p.input + cached * p.cached_input + ct * p.output) / 1e6
        cost.add_metric([], total)
        yield cost

    def describe(self):
        return []


class _BatchStats:
    """A ``BatchRunner``'s answers in ``ClientStats``' shape, read at scrape time: each answered request is one
    request; its tokens as the provider reported them."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    def __getattr__(self, name: str) -> int:
        if name in ("requests", "prompt_tokens", "completion_tokens", "cached_tokens"):
            return int(self.runner.usage.get(name, 0) or 0)
        if name.startswith("_"):
            raise AttributeError(name)
        return 0  # 429s, retries, timeouts: the Batch API's own, not the live client's


def _discounted(price: Any, discount: float) -> Any:
    if price is None:
        return None
    from types import SimpleNamespace

    return SimpleNamespace(input=price.input * discount, cached_input=price.cached_input * discount,
                           output=price.output * discount)


def tracer_provider_from_env() -> Any | None:
    """An OTLP/HTTP span exporter when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set."""
    if not (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME",
                                                                                        "contentgen")}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class _Member:
    """One member's trace: the root span, its stages, the outcome."""

    def __init__(self, metrics: RunMetrics, key: str):
        self.metrics = metrics
        self.key = key
        self.t0 = time.perf_counter()
        self.span = None
        if metrics.tracer is not None:
            self.span = metrics.tracer.start_span("contentgen.member", attributes={
                "contentgen.member_key": key, "contentgen.campaign_id": metrics.campaign_id})

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        with self._current():
            with self.metrics.stage(name):
                yield

    @contextlib.contextmanager
    def _current(self) -> Iterator[None]:
        if self.span is None:
            yield
            return
        from opentelemetry import trace

        with trace.use_span(self.span, end_on_exit=False):
            yield

    async def run(self, coro: Awaitable[Any]) -> Any:
        """Await the member's decision with its span current (child spans nest) and count it in flight."""
        g = self.metrics.members_in_flight
        g.inc()
        outcome = "error"
        try:
            with self._current():
                result = await coro
            outcome = getattr(result, "outcome", None) or "decided"
            return result
        except BaseException as e:
            outcome = "pending" if type(e).__name__ in ("TransportFailure", "ProviderUnavailable",
                                                        "BudgetExhausted") else "error"
            if self.span is not None:
                self.span.record_exception(e)
            raise
        finally:
            g.dec()
            self.end(outcome)

    def end(self, outcome: str) -> None:
        self.metrics.stage_seconds.labels("member").observe(time.perf_counter() - self.t0)
        if self.span is not None:
            self.span.set_attribute("contentgen.outcome", outcome)
            if outcome == "error":
                from opentelemetry.trace import Status, StatusCode

                self.span.set_status(Status(StatusCode.ERROR))
            self.span.end()
            self.span = None


class RunMetrics:
    """Prometheus metrics in their own registry (one per run or studio) and, optionally, a tracer."""

    def __init__(self, *, registry: CollectorRegistry | None = None, tracer_provider: Any | None = None,
                 campaign_id: str = "") -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.campaign_id = campaign_id
        self.tracer_provider = tracer_provider
        self.tracer = tracer_provider.get_tracer("contentgen") if tracer_provider is not None else None
        self.members = Counter("contentgen_members", "Members committed to the run store, by outcome", ["outcome"],
                               registry=r)
        self.completions = Counter("contentgen_llm_completions", "Completions the decide step received, by source "
                                   "(model: a model call; cache: an identical prompt answered before)", ["source"],
                                   registry=r)
        self.findings = Counter("contentgen_gate_findings", "Gate findings over every attempt, by rule",
                                ["rule_id", "gate", "severity"], registry=r)
        self.members_in_flight = Gauge("contentgen_members_in_flight", "Members being decided now", registry=r)
        self.requests_in_flight = Gauge("contentgen_llm_requests_in_flight", "Completions awaited now", registry=r)
        self.expected = Gauge("contentgen_run_members_expected", "Member rows this run will go through", registry=r)
        self.info = Gauge("contentgen_run_info", "The run (value 1)", ["campaign_id", "model"], registry=r)
        self.stage_seconds = Histogram("contentgen_stage_seconds", "Time per member stage (member = the whole "
                                       "member; commit = one chunk's transaction)", ["stage"], buckets=STAGE_BUCKETS,
                                       registry=r)
        self.llm_seconds = Histogram("contentgen_llm_request_seconds", "Time of one completion, retries and "
                                     "rate-limit waits included", buckets=LLM_BUCKETS, registry=r)
        for outcome in OUTCOMES:
            self.members.labels(outcome)
        self._clients = _ClientCollector()
        r.register(self._clients)

    # ---------------------------------------------------------------- wiring

    def attach(self, *, client: Any = None, cache: Any = None, price: Any = None, model: str | None = None,
               campaign_id: str | None = None, expected: int | None = None, batch: Any = None,
               batch_discount: float = 1.0) -> None:
        """What the run is made of: its LLM client (counters read at scrape time), prices, model, size;
        ``batch``: the Batch API runner of ``--batch`` (its answers counted as requests, tokens and spend at
        ``price`` times ``batch_discount``, like the manifest's ``cost_usd``)."""
        if batch is not None:
            self._clients.add(_BatchStats(batch), _discounted(price, batch_discount))
        if campaign_id is not None:
            self.campaign_id = campaign_id
        if expected is not None:
            self.expected.set(expected)
        if client is not None and getattr(client, "stats", None) is not None:
            self._clients.add(client.stats, price)
        if model is not None:
            self.info.labels(self.campaign_id, model).set(1)

    def instrument(self, decider: Any) -> Any:
        """Time the decider's gate runs as the ``gates`` stage (wraps ``decider.check``)."""
        check = decider.check

        def timed_check(plan, msg):
            with self.stage("gates"):
                return check(plan, msg)

        decider.check = timed_check
        return decider

    # ---------------------------------------------------------------- events

    def member(self, key: str) -> _Member:
        return _Member(self, key)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        span_cm = (self.tracer.start_as_current_span(f"contentgen.{name}") if self.tracer is not None
                   else contextlib.nullcontext())
        with span_cm:
            try:
                yield
            finally:
                self.stage_seconds.labels(name).observe(time.perf_counter() - t0)

    async def llm_call(self, coro: Awaitable[Any]) -> Any:
        """One completion: in flight while awaited, its latency, a ``generate`` span (tokens come from the client)."""
        self.requests_in_flight.inc()
        t0 = time.perf_counter()
        try:
            with self.stage("generate"):
                return await coro
        finally:
            self.requests_in_flight.dec()
            self.llm_seconds.observe(time.perf_counter() - t0)

    def completion(self, cached: bool) -> None:
        self.completions.labels("cache" if cached else "model").inc()

    def committed(self, rows: Iterable[dict[str, Any]]) -> None:
        """Members committed to the run store: outcome counts and every attempt's findings by rule."""
        for row in rows:
            self.members.labels(row.get("outcome") or "unknown").inc()
            for a in row.get("attempts") or ():
                for f in a.get("findings") or ():
                    self.findings.labels(f.get("rule_id", ""), f.get("gate", ""), f.get("severity", "")).inc()

    # ---------------------------------------------------------------- output

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        if self.tracer_provider is not None and hasattr(self.tracer_provider, "shutdown"):
            self.tracer_provider.shutdown()


class _NullMember:
    def stage(self, name: str):
        return contextlib.nullcontext()

    async def run(self, coro):
        return await coro

    def end(self, outcome: str) -> None:
        pass


class NullMetrics:
    """The same interface, doing nothing (library callers that pass no metrics)."""

    def attach(self, **kw: Any) -> None:
        pass

    def instrument(self, decider: Any) -> Any:
        return decider

    def member(self, key: str) -> _NullMember:
        return _NullMember()

    def stage(self, name: str):
        return contextlib.nullcontext()

    async def llm_call(self, coro):
        return await coro

    def completion(self, cached: bool) -> None:
        pass

    def committed(self, rows) -> None:
        pass

    def shutdown(self) -> None:
        pass


class _StoreCollector:
    """A run store's state, read when Prometheus scrapes the studio: members by outcome, reviewers' decisions,
    error findings by rule, and the manifest's tokens and spend."""

    def __init__(self, store: Callable[[], Any], run_dir: Path):
        self.store = store  # () -> the run's counts (the studio's StudioDB on its per-thread connection)
        self.run_dir = Path(run_dir)

    def collect(self):
        store = self.store()
        counts = store.counts()
        g = GaugeMetricFamily("contentgen_run_members", "Members in the run store by outcome (before reviewers' "
                              "decisions)", labels=["outcome"])
        for outcome in OUTCOMES:
            g.add_metric([outcome], float(counts.get(outcome, 0)))
        yield g
        actions: dict[str, int] = {}
        for d in store.iter_decisions():
            actions[d["action"]] = actions.get(d["action"], 0) + 1
        c = CounterMetricFamily("contentgen_review_decisions", "Reviewers' recorded decisions", labels=["action"])
        for action in sorted(set(actions) | {"approve", "reject", "edit"}):
            c.add_metric([action], float(actions.get(action, 0)))
        yield c
        f = GaugeMetricFamily("contentgen_run_error_findings", "Error findings in the run store, by rule",
                              labels=["rule_id", "gate"])
        for rule_id, gate, n in store.top_rules(limit=1000):
            f.add_metric([rule_id, gate], float(n))
        yield f
        try:
            manifest = json.loads((self.run_dir / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        usage = manifest.get("usage") or {}
        t = GaugeMetricFamily("contentgen_run_tokens", "Tokens the run used (manifest)", labels=["kind"])
        for kind in ("prompt", "completion", "cached"):
            t.add_metric([kind], float(usage.get(f"{kind}_tokens", 0) or 0))
        yield t
        if manifest.get("cost_usd") is not None:
            yield GaugeMetricFamily("contentgen_run_cost_usd", "Spend of the run (manifest, USD)",
                                    value=float(manifest["cost_usd"]))

    def describe(self):
        return []


def studio_metrics(store: Callable[[], Any], run_dir: Path) -> RunMetrics:
    """The studio's registry: the run store's state plus the preview's LLM clients (``attach``)."""
    m = RunMetrics()
    m.registry.register(_StoreCollector(store, run_dir))
    return m


@contextlib.contextmanager
def serve(metrics: RunMetrics, port: int, host: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """Serve ``/metrics`` on HOST:PORT (0 picks a free port) in a thread; stopped on exit."""
    from prometheus_client import start_http_server

    from .errors import ConfigError

    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as e:
        raise ConfigError(f"cannot serve metrics on {host}:{port} ({e.strerror})",
                          hint="choose a free --metrics-port (0 picks one) or another --metrics-host") from None
    try:
        yield host, server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextlib.contextmanager
def run_metrics(port: int | None, host: str = "127.0.0.1", log=None) -> Iterator[RunMetrics | None]:
    """For ``contentgen run``: metrics served on PORT while the run lasts, spans exported when
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; None when neither is asked for."""
    provider = tracer_provider_from_env()
    if port is None and provider is None:
        yield None
        return
    metrics = RunMetrics(tracer_provider=provider)
    try:
        if port is None:
            yield metrics
            return
        with serve(metrics, port, host) as (h, p):
            if log:
                log(f"metrics on http://{h}:{p}/metrics")
            yield metrics
    finally:
        metrics.shutdown()
