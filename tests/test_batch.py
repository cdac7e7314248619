"""Batch mode through the fake server's Files + Batches endpoints, including a restart while in flight."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.export import verify
from contentgen.sample_data import write_sample_data
from tests import responders
from tests.util import REPO


def test_batch_run_joins_results_and_repairs_live(tmp_path, fake_openai):
    paths = write_sample_data(tmp_path / "data", 80, seed=4, bad_rows=False)
    fake_openai.responder = responders.bad_then_good  # every first attempt fails the brand gate: repairs go live
    fake_openai.batch_delay_s = 0.3
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["run", str(paths["campaign"]), "--out", str(out), "--base-url", fake_openai.base_url,
                                 "--api-key", "k", "--batch", "--batch-poll", "0.1", "--model", "gpt-4o-mini"])
    assert r.exit_code == 0, r.output
    assert len(fake_openai.batches) == 1
    batch_lines = [ln for ln in (out / "batches" / "requests-00001.jsonl").read_text().splitlines()]
    ids = [json.loads(ln)["custom_id"] for ln in batch_lines]
    assert len(ids) == len(set(ids))  # identical prompts asked once
    live_first = [q for q in fake_openai.requests if q.path.endswith("/chat/completions")
                  and not any("broke these rules" in (m.get("content") or "") for m in q.body["messages"])]
    assert live_first == []  # every first attempt came from the batch
    recs = [json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()]
    assert any(x["outcome"] == "repaired" for x in recs)
    m = json.loads((out / "manifest.json").read_text())
    assert m["batch"]["requests"] == len(ids) and m["batch"]["usage"]["requests"] == len(ids)
    assert verify(out)["members"] == len(recs)


def test_batch_run_survives_a_restart_while_in_flight(tmp_path, fake_openai, store_url):
    paths = write_sample_data(tmp_path / "data", 60, seed=6, bad_rows=False)
    fake_openai.responder = responders.copywriter
    fake_openai.batch_delay_s = 1.0
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "contentgen.cli", "run", str(paths["campaign"]), "--out", str(out),
           "--base-url", fake_openai.base_url, "--api-key", "k", "--batch", "--batch-poll", "0.1",
           *(["--store", store_url] if store_url else [])]
    env = {**os.environ, "PYTHONPATH": str(REPO), "CONTENTGEN_FAILPOINT": "batch-submitted:1"}
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert p.returncode == -9, p.stderr  # killed right after the batch was created
    assert len(fake_openai.batches) == 1
    env.pop("CONTENTGEN_FAILPOINT")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(fake_openai.batches) == 1  # the in-flight batch was polled, not submitted again
    live_first = [q for q in fake_openai.requests if q.path.endswith("/chat/completions")
                  and not any("broke these rules" in (m.get("content") or "") for m in q.body["messages"])]
    assert live_first == []  # first attempts all came from the batch; only repairs went live
    assert verify(out)["counts"]["approved"] > 0


# -- the Batch API's failure modes (documented shapes: errors.data, error-file lines, statuses) ------------

def _batch_campaign(tmp_path, n=30, llm=""):
    paths = write_sample_data(tmp_path / "data", n, seed=8, bad_rows=False)
    if llm:
        paths["campaign"].write_text(paths["campaign"].read_text() + f"llm: {llm}\n")
    return paths


def _batch_run(paths, out, fake):
    return CliRunner().invoke(cli, ["run", str(paths["campaign"]), "--out", str(out), "--base-url", fake.base_url,
                                    "--api-key", "k", "--batch", "--batch-poll", "0.05", "--model", "gpt-4o-mini"])


def _live_first_attempts(fake):
    return [q for q in fake.requests if q.path.endswith("/chat/completions")
            and not any("broke these rules" in (m.get("content") or "") for m in q.body["messages"])]


def _failures(out):
    import sqlite3
    db = sqlite3.connect(out / "run.db")
    try:
        return list(db.execute("SELECT key, code, message, retryable FROM batch_failures"))
    finally:
        db.close()


def test_token_limit_exceeded_is_split_to_the_limit_and_resubmitted_never_live(tmp_path, fake_openai):
    paths = _batch_campaign(tmp_path)
    fake_openai.responder = responders.copywriter
    fake_openai.batch_delay_s = 0.05
    fake_openai.batch_queue_limit = 6_000          # the whole file is several times that
    out = tmp_path / "out"
    r = _batch_run(paths, out, fake_openai)
    assert r.exit_code == 0, r.output
    statuses = [b["status"] for b in fake_openai.batches.values()]
    assert statuses[0] == "failed" and fake_openai.batches[next(iter(fake_openai.batches))]["errors"]["data"][0][
        "code"] == "token_limit_exceeded"
    assert statuses.count("completed") >= 2, statuses          # split into parts under the limit
    assert "token_limit_exceeded" in r.output and "split into" in r.output
    assert _live_first_attempts(fake_openai) == []              # nothing went live at full price
    m = json.loads((out / "manifest.json").read_text())
    assert m["batch"]["failed"] == 0 and m["batch"]["answered"] == m["batch"]["requests"]


def test_submission_stays_within_the_configured_queued_token_limit(tmp_path, fake_openai):
    paths = _batch_campaign(tmp_path, llm="{batch_queued_tokens: 6000}")
    fake_openai.responder = responders.copywriter
    fake_openai.batch_delay_s = 0.05
    fake_openai.batch_queue_limit = 6_000
    r = _batch_run(paths, tmp_path / "out", fake_openai)
    assert r.exit_code == 0, r.output
    assert [b["status"] for b in fake_openai.batches.values()].count("failed") == 0   # never over the limit
    assert len(fake_openai.batches) >= 2 and _live_first_attempts(fake_openai) == []


def test_an_expired_batch_keeps_its_answers_records_the_rest_and_resubmits_them(tmp_path, fake_openai):
    paths = _batch_campaign(tmp_path)
    fake_openai.responder = responders.copywriter
    fake_openai.batch_delay_s = 0.05
    fake_openai.batch_plan.append({"outcome": "expired", "answer": 0.5})
    out = tmp_path / "out"
    r = _batch_run(paths, out, fake_openai)
    assert r.exit_code == 0, r.output
    first, second = list(fake_openai.batches.values())
    assert first["status"] == "expired" and second["status"] == "completed"
    failures = _failures(out)
    assert failures and {f[1] for f in failures} == {"batch_expired"} and all(f[3] == 1 for f in failures)
    assert second["request_counts"]["total"] == len(failures)          # only the unanswered went again
    assert first["request_counts"]["completed"] + len(failures) == first["request_counts"]["total"]
    assert _live_first_attempts(fake_openai) == []


def test_unanswered_requests_stop_the_run_unless_the_campaign_chooses_live(tmp_path, fake_openai):
    paths = _batch_campaign(tmp_path, n=16, llm="{batch_resubmits: 0}")
    fake_openai.responder = responders.copywriter
    fake_openai.batch_delay_s = 0.05
    fake_openai.batch_plan.append({"outcome": "cancelled", "answer": 0.25})
    out = tmp_path / "out"
    r = _batch_run(paths, out, fake_openai)
    assert r.exit_code == 3, r.output
    assert "could not be answered by the Batch API" in r.output and "batch_cancelled" in r.output
    assert "batch_live_fallback" in r.output and "Traceback" not in r.output
    assert fake_openai.requests == []                                   # nothing live, not even repairs
    unanswered = len(_failures(out))
    fake_openai.batch_plan.append({"outcome": "expired", "answer": 0.0})      # a re-run: a new batch, expires
    r = _batch_run(paths, out, fake_openai)
    assert r.exit_code == 3 and len(fake_openai.batches) == 2, r.output
    assert fake_openai.batches[list(fake_openai.batches)[1]]["request_counts"]["total"] == unanswered
    assert fake_openai.requests == []
    text = paths["campaign"].read_text().replace("batch_resubmits: 0", "batch_resubmits: 0, "
                                                                       "batch_live_fallback: true")
    paths["campaign"].write_text(text)
    r = CliRunner().invoke(cli, ["run", str(paths["campaign"]), "--out", str(out), "--base-url",
                                 fake_openai.base_url, "--api-key", "k", "--batch", "--batch-poll", "0.05",
                                 "--model", "gpt-4o-mini"])      # resumes: an operational key changed
    assert r.exit_code == 0, r.output
    assert "go live at full price (llm.batch_live_fallback: true)" in r.output
    assert len(fake_openai.batches) == 2 and unanswered > 0         # the answered ones were kept, not re-asked
    assert len(_live_first_attempts(fake_openai)) == unanswered


def test_error_file_lines_are_recorded_per_request(tmp_path, fake_openai):
    paths = _batch_campaign(tmp_path, n=16, llm="{batch_live_fallback: true}")
    calls = {"n": 0}

    def sometimes_refused(body):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            return {"status": 400, "message": "Invalid 'messages[1].content': string too long."}
        return responders.copywriter(body)

    fake_openai.responder = sometimes_refused
    fake_openai.batch_delay_s = 0.05
    out = tmp_path / "out"
    r = _batch_run(paths, out, fake_openai)
    assert r.exit_code == 0, r.output
    failures = _failures(out)
    batch = next(iter(fake_openai.batches.values()))
    assert len(failures) == batch["request_counts"]["failed"] > 0
    assert all(f[2].startswith("HTTP 400: Invalid 'messages[1].content'") and f[3] == 0 for f in failures)
    live_keys = len(_live_first_attempts(fake_openai))
    assert live_keys >= len(failures)                                    # the campaign chose live for them


def test_5xx_while_polling_is_retried(tmp_path, fake_openai):
    paths = _batch_campaign(tmp_path, n=12)
    fake_openai.responder = responders.copywriter
    fake_openai.batch_delay_s = 0.3
    fake_openai.fail_http("GET", r"/v1/batches/[^/]+", [502, 502, 503, 502])
    fake_openai.fail_http("POST", r"/v1/files", [503])
    r = _batch_run(paths, tmp_path / "out", fake_openai)
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output and len(fake_openai.batches) == 1
    polls = [s for s in fake_openai.seen if s["method"] == "GET" and s["path"].startswith("/v1/batches/")]
    assert len(polls) >= 5


def test_a_crash_between_create_and_record_never_creates_a_second_batch(tmp_path, fake_openai, store_url):
    paths = _batch_campaign(tmp_path, n=12)
    fake_openai.responder = responders.copywriter
    fake_openai.batch_delay_s = 0.5
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "contentgen.cli", "run", str(paths["campaign"]), "--out", str(out),
           "--base-url", fake_openai.base_url, "--api-key", "k", "--batch", "--batch-poll", "0.1",
           *(["--store", store_url] if store_url else [])]
    env = {**os.environ, "PYTHONPATH": str(REPO), "CONTENTGEN_FAILPOINT": "batch-created:1"}
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert p.returncode == -9, p.stderr            # killed after batches.create, before it was recorded
    assert len(fake_openai.batches) == 1
    env.pop("CONTENTGEN_FAILPOINT")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert len(fake_openai.batches) == 1 and "found again" in p.stderr
    assert _live_first_attempts(fake_openai) == []


def test_a_refused_upload_stops_with_the_providers_message(tmp_path, fake_openai):
    paths = _batch_campaign(tmp_path, n=8)
    fake_openai.fail_http("POST", r"/v1/files", [401])
    r = _batch_run(paths, tmp_path / "out", fake_openai)
    assert r.exit_code == 6, r.output
    assert "refused files.create: HTTP 401" in r.output and "Traceback" not in r.output
    assert fake_openai.batches == {} and fake_openai.requests == []
