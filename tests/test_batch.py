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


def test_batch_run_survives_a_restart_while_in_flight(tmp_path, fake_openai):
    paths = write_sample_data(tmp_path / "data", 60, seed=6, bad_rows=False)
    fake_openai.responder = responders.copywriter
    fake_openai.batch_delay_s = 1.0
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "contentgen.cli", "run", str(paths["campaign"]), "--out", str(out),
           "--base-url", fake_openai.base_url, "--api-key", "k", "--batch", "--batch-poll", "0.1"]
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
