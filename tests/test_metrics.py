"""Job metrics: Prometheus scraped over real HTTP from a running `contentgen run --metrics-port`, counts that
agree with the manifest, OpenTelemetry spans per member stage (SDK in-memory exporter, and OTLP/HTTP to a
loopback receiver), and the studio's /metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contentgen.metrics import RunMetrics
from contentgen.pipeline import RunOptions, run_campaign
from contentgen.sample_data import write_sample_data
from tests import responders
from tests.util import REPO


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: dict, name: str, **labels) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def total(m: dict, name: str) -> float:
    return sum(v for (n, _), v in m.items() if n == name)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_sample_data(tmp_path_factory.mktemp("metrics-data"), 40, seed=3)


def test_run_serves_metrics_over_http_while_it_runs(data, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    fake_openai.reset(latency_s=0.12)
    fake_openai.responder = responders.copywriter
    fake_openai.script([{"status": 429, "retry_after": 0.05}, {"status": 429, "retry_after": 0.05}])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
    proc = subprocess.Popen([sys.executable, "-m", "contentgen.cli", "run", str(data["campaign"]), "--out",
                             str(tmp_path / "out"), "--base-url", fake_openai.base_url, "--api-key", "k",
                             "--concurrency", "2", "--chunk-size", "8", "--metrics-port", "0"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    url: list[str] = []

    def read_stderr():
        for line in proc.stderr:
            lines.append(line)
            if "metrics on http://" in line and not url:
                url.append(line.split("metrics on ", 1)[1].strip())

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert url, "".join(lines)
        during = None
        while time.monotonic() < deadline and proc.poll() is None:
            r = httpx.get(url[0], timeout=5)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            m = samples(r.text)
            if total(m, "contentgen_members_total") >= 8 and value(m, "contentgen_llm_rate_limited_total") >= 2:
                during = m
                break
            time.sleep(0.1)
        assert during is not None, "the run ended before a scrape saw its progress:\n" + "".join(lines)
        assert proc.poll() is None  # scraped while the run was still going
        assert value(during, "contentgen_members_total", outcome="approved") > 0
        assert value(during, "contentgen_llm_requests_total") >= total(during, "contentgen_members_total") * 0.5
        assert value(during, "contentgen_llm_retries_total") >= 2
        assert value(during, "contentgen_llm_tokens_total", kind="prompt") > 0
        assert value(during, "contentgen_stage_seconds_count", stage="plan") > 0
        assert value(during, "contentgen_stage_seconds_count", stage="gates") > 0
        assert value(during, "contentgen_llm_request_seconds_count") > 0
        assert value(during, "contentgen_run_members_expected") == 40
        assert ("contentgen_members_in_flight", ()) in during
        assert proc.wait(timeout=120) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    # the endpoint goes away with the run
    with pytest.raises(httpx.TransportError):
        httpx.get(url[0], timeout=2)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert total(during, "contentgen_members_total") <= manifest["total_members"]


def test_counts_agree_with_the_manifest(data, tmp_path, fake_openai):
    fake_openai.responder = responders.bad_then_good  # findings on the first attempt, repaired on the second
    metrics = RunMetrics()
    res = run_campaign(data["campaign"], RunOptions(out=tmp_path / "out", base_url=fake_openai.base_url,
                                                    api_key="k", metrics=metrics))
    m = samples(metrics.exposition().decode())
    man = res.manifest
    assert {o: int(value(m, "contentgen_members_total", outcome=o)) for o in man["counts"]} == man["counts"]
    assert value(m, "contentgen_llm_requests_total") == man["llm"]["requests"]
    assert value(m, "contentgen_llm_tokens_total", kind="prompt") == man["usage"]["prompt_tokens"]
    assert value(m, "contentgen_llm_tokens_total", kind="completion") == man["usage"]["completion_tokens"]
    assert value(m, "contentgen_llm_completions_total", source="model") == man["dedup"]["model_calls"]
    assert value(m, "contentgen_llm_completions_total", source="cache") == \
        man["dedup"]["store_hits"] + man["dedup"]["inflight_hits"]
    assert value(m, "contentgen_llm_cost_usd_total") == pytest.approx(man["cost_usd"] or 0.0, abs=1e-6)
    # findings by rule: every attempt's findings, as recorded in the run store
    from contentgen.store import SqliteStore

    store = SqliteStore(tmp_path / "out" / "run.db")
    try:
        rows = store.db.execute("SELECT rule_id, gate, severity, COUNT(*) FROM findings GROUP BY 1, 2, 3").fetchall()
    finally:
        store.close()
    assert rows, "the sample run should produce some findings"
    for rule_id, gate, severity, n in rows:
        assert value(m, "contentgen_gate_findings_total", rule_id=rule_id, gate=gate, severity=severity) == n
    assert value(m, "contentgen_members_in_flight") == 0 and value(m, "contentgen_llm_requests_in_flight") == 0


def test_batch_mode_counts_the_same_metrics(tmp_path, fake_openai):
    """--batch: members by outcome as committed, and the batch's answers in the same requests, tokens and
    spend families as live answers, so a scrape agrees with the manifest (live + batch usage, total cost)."""
    paths = write_sample_data(tmp_path / "data", 40, seed=4, bad_rows=False)
    fake_openai.responder = responders.bad_then_good  # first attempts from the batch fail: repairs go live
    fake_openai.batch_delay_s = 0.2
    metrics = RunMetrics()
    res = run_campaign(paths["campaign"], RunOptions(out=tmp_path / "out", base_url=fake_openai.base_url,
                                                     api_key="k", model="gpt-4o-mini", batch=True,
                                                     batch_poll_s=0.1, metrics=metrics))
    assert res.status == "complete", res.message
    m = samples(metrics.exposition().decode())
    man = res.manifest
    batch = man["batch"]["usage"]
    assert batch["requests"] > 0 and man["llm"]["requests"] > 0  # both paths answered something
    assert {o: int(value(m, "contentgen_members_total", outcome=o)) for o in man["counts"]} == man["counts"]
    assert value(m, "contentgen_llm_requests_total") == man["llm"]["requests"] + batch["requests"]
    assert value(m, "contentgen_llm_tokens_total", kind="prompt") == \
        man["usage"]["prompt_tokens"] + batch["prompt_tokens"]
    assert value(m, "contentgen_llm_tokens_total", kind="completion") == \
        man["usage"]["completion_tokens"] + batch["completion_tokens"]
    assert man["cost_usd"] and value(m, "contentgen_llm_cost_usd_total") == pytest.approx(man["cost_usd"], abs=1e-6)


def test_otel_spans_per_member_stage_in_memory(data, tmp_path, fake_openai):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    fake_openai.responder = responders.copywriter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    metrics = RunMetrics(tracer_provider=provider)
    res = run_campaign(data["campaign"], RunOptions(out=tmp_path / "out", base_url=fake_openai.base_url,
                                                    api_key="k", metrics=metrics))
    spans = exporter.get_finished_spans()
    members = {s.context.span_id: s for s in spans if s.name == "contentgen.member"}
    recs = [json.loads(x) for x in (tmp_path / "out" / "messages.jsonl").read_text().splitlines()]
    decided = [r for r in recs if r["outcome"] != "invalid"]
    assert len(members) == len(decided)
    outcome_of = {r.get("member_key") or r["member_id"]: r["outcome"] for r in decided}
    by_key = {s.attributes["contentgen.member_key"]: s for s in members.values()}
    for key, s in by_key.items():
        assert s.attributes["contentgen.outcome"] == outcome_of.get(key, s.attributes["contentgen.outcome"])
        assert s.parent is None  # one trace per member
    assert Counter(s.attributes["contentgen.outcome"] for s in members.values()) == \
        Counter(r["outcome"] for r in decided)
    children = Counter()
    for s in spans:
        if s.parent is not None and s.parent.span_id in members:
            children[s.name] += 1
            assert s.context.trace_id == members[s.parent.span_id].context.trace_id
    assert children["contentgen.plan"] == len(members)
    generated = sum(1 for r in decided if r["outcome"] in ("approved", "repaired", "fallback", "review", "rejected")
                    and r.get("attempts"))
    # one generate span per model call (identical prompts are answered from the cache, without a call)
    assert children["contentgen.generate"] == res.manifest["dedup"]["model_calls"] > 0
    assert children["contentgen.gates"] >= generated > 0
    commits = [s for s in spans if s.name == "contentgen.commit"]
    assert commits and all(s.parent is None for s in commits)


class _OTLPReceiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802
        n = int(self.headers.get("content-length", 0))
        type(self).bodies.append((self.path, self.rfile.read(n)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_otel_endpoint_env_exports_spans_over_otlp_http(data, tmp_path, fake_openai):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    fake_openai.responder = responders.copywriter
    _OTLPReceiver.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OTLPReceiver)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPENAI_"))}
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{server.server_port}"
        env["OTEL_SERVICE_NAME"] = "contentgen-test"
        r = subprocess.run([sys.executable, "-m", "contentgen.cli", "run", str(data["campaign"]), "--out",
                            str(tmp_path / "out"), "--base-url", fake_openai.base_url, "--api-key", "k",
                            "--limit", "12"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    finally:
        server.shutdown()
        server.server_close()
    names = Counter()
    services = set()
    for path, body in _OTLPReceiver.bodies:
        assert path == "/v1/traces"
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            services |= {a.value.string_value for a in rs.resource.attributes if a.key == "service.name"}
            for ss in rs.scope_spans:
                names.update(s.name for s in ss.spans)
    assert services == {"contentgen-test"}
    assert names["contentgen.member"] == 12 and names["contentgen.plan"] == 12 and names["contentgen.generate"] > 0


def test_studio_metrics_endpoint(data, tmp_path, fake_openai):
    from starlette.testclient import TestClient

    from contentgen.web.app import create_app
    from contentgen.web.auth import Accounts

    fake_openai.responder = responders.copywriter
    res = run_campaign(data["campaign"], RunOptions(out=tmp_path / "out", base_url=fake_openai.base_url,
                                                    api_key="k"))
    app = create_app(tmp_path / "out", accounts=Accounts.single("admin", "pw-123456"))
    with TestClient(app, base_url="http://localhost") as client:  # the studio serves loopback Host names only
        r = client.get("/metrics")  # no session: Prometheus scrapes it
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        m = samples(r.text)
        assert {o: int(value(m, "contentgen_run_members", outcome=o)) for o in res.manifest["counts"]} == \
            res.manifest["counts"]
        assert value(m, "contentgen_run_tokens", kind="prompt") == res.manifest["usage"]["prompt_tokens"]
        assert value(m, "contentgen_review_decisions_total", action="approve") == 0
        assert client.get("/dashboard", follow_redirects=False).status_code in (302, 303)  # the rest still needs a login
