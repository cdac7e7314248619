"""Whole campaigns through the real pipeline against the fake OpenAI server on loopback."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.export import verify
from contentgen.models import OUTCOMES
from contentgen.pipeline import RunOptions, run_campaign
from contentgen.sample_data import write_sample_data
from tests import responders

N = 220


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> dict[str, Path]:
    return write_sample_data(tmp_path_factory.mktemp("data"), N, seed=11)


def records(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()]


def input_rows(sample) -> int:
    return sum(1 for _ in open(sample["members"])) - 1


def run(sample, out, fake, **kw):
    return run_campaign(sample["campaign"], RunOptions(out=out, base_url=fake.base_url, api_key="test-key", **kw))


def test_campaign_exports_every_member_once(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    res = run(sample, tmp_path / "out", fake_openai)
    assert res.status == "complete"
    recs = records(tmp_path / "out")
    m = res.manifest
    # every input row exactly once, counts add up, manifest matches the files
    assert len(recs) == input_rows(sample) == m["total_members"]
    assert sum(m["counts"].values()) == m["total_members"]
    assert set(m["counts"]) == set(OUTCOMES)
    ids = [r["member_id"] for r in recs if r["outcome"] != "invalid"]
    assert len(ids) == len(set(ids))
    assert verify(tmp_path / "out")["members"] == len(recs)
    got = Counter(r["outcome"] for r in recs)
    assert got["approved"] > 0 and got["suppressed"] > 0 and got["invalid"] >= 5
    assert m["hashes"]["prompts"] and m["hashes"]["rules"] and m["usage"]["requests"] > 0
    # the key is never written anywhere
    for name in ("messages.jsonl", "manifest.json", "quarantine.jsonl"):
        assert "test-key" not in (tmp_path / "out" / name).read_text()
    assert b"test-key" not in (tmp_path / "out" / "run.db").read_bytes()


def test_assembled_email_carries_facts_and_footer(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    run(sample, tmp_path / "out", fake_openai)
    for r in records(tmp_path / "out"):
        if r["outcome"] != "approved" or r["channel"] != "email":
            continue
        msg = r["message"]
        assert msg["body"].rstrip().endswith("— The AthenaPlus team")
        assert "400 Market Street, Suite 200, Portland, OR 97204, USA" in msg["footer"]
        assert "Unsubscribe: https://athenaplus.example/unsubscribe?t=" in msg["footer"]
        assert "{first_name}" not in msg["text"] and "Hi ," not in msg["text"]
        if r["tier"] == 1:
            assert msg["explanations"] == []
        else:
            assert msg["explanations"]
        if r["tier"] == 3:
            assert "privacy dashboard" in msg["footer"]


def test_repair_then_approve(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.bad_then_good
    res = run(sample, tmp_path / "out", fake_openai, limit=30)
    got = Counter(r["outcome"] for r in records(tmp_path / "out"))
    assert got["repaired"] > 0 and got["approved"] == 0
    rec = next(r for r in records(tmp_path / "out") if r["outcome"] == "repaired")
    assert rec["attempts"] == 2
    # the repair turn told the model what fired and where
    repair_prompts = [r for r in fake_openai.requests if "broke these rules" in json.dumps(r.body)]
    assert repair_prompts
    assert res.manifest["usage"]["requests"] > 0


def test_fallback_after_max_repairs_and_nothing_bad_sent(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.always_bad
    run(sample, tmp_path / "out", fake_openai, limit=40)
    recs = records(tmp_path / "out")
    fb = [r for r in recs if r["outcome"] == "fallback"]
    assert fb, Counter(r["outcome"] for r in recs)
    for r in fb:
        assert r["send"] is True
        assert "We noticed" not in json.dumps(r["message"])
        if r["tier"] == 1:  # the segment's basic message: no per-member reasoning at all
            assert r["message"].get("explanations", []) == [] and r["fallback"] == "segment"
        elif r["channel"] == "email":  # the member's own picks, each explained from what the tier allows
            assert r["fallback"] == "personal"
            picks = [p["product_id"] for p in r["plan"]["products"]]
            assert [x["product_id"] for x in r["message"]["explanations"]] == picks
            assert [p["product_id"] for p in r["message"]["products"]] == picks
            for x in r["message"]["explanations"]:
                assert x["text"].startswith("We recommended this because: (1) ")
        assert any(f["gate"] == "compliance" for f in r["findings"])  # the failure is recorded
        assert r["attempts"] == 3  # max_repairs 2 -> 3 model attempts
    assert {r["fallback"] for r in fb} == {"personal", "segment"}
    assert not [r for r in recs if r["outcome"] in ("approved", "repaired")]


def test_invalid_json_is_repaired(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    fake_openai.script([{"content": "this is not json"}])
    run(sample, tmp_path / "out", fake_openai, limit=12, concurrency=1)
    recs = records(tmp_path / "out")
    assert any(r["outcome"] == "repaired" for r in recs)


def test_quarantine_file_names_file_line_field(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    run(sample, tmp_path / "out", fake_openai)
    q = [json.loads(x) for x in (tmp_path / "out" / "quarantine.jsonl").read_text().splitlines()]
    fields = {x["field"] for x in q}
    assert {"segment", "opt_in_tier", "churn_risk", "member_id"} <= fields
    assert any(x["field"].startswith("recommendations[") for x in q)
    assert all(x["file"] and x["line"] >= 1 and x["reason"] for x in q)
    invalid = [r for r in records(tmp_path / "out") if r["outcome"] == "invalid"]
    assert all(r["quarantine"]["line"] >= 2 for r in invalid)


def test_rerun_is_a_noop_and_changed_inputs_refuse_to_resume(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    out = tmp_path / "out"
    run(sample, out, fake_openai, limit=20)
    calls = len(fake_openai.requests)
    again = run(sample, out, fake_openai, limit=20)
    assert again.status == "already-complete" and len(fake_openai.requests) == calls
    # a changed rule file hash refuses to resume, naming what changed
    campaign = sample["campaign"].read_text()
    changed = sample["campaign"].parent / "campaign2.yaml"
    changed.write_text(campaign.replace("top_k: 3", "top_k: 2"))
    runner = CliRunner()
    r = runner.invoke(cli, ["run", str(changed), "--out", str(out), "--base-url", fake_openai.base_url,
                            "--api-key", "k", "--limit", "20"])
    assert r.exit_code == 4, r.output
    assert "inputs changed since this run started: campaign" in r.output and "--restart" in r.output
    r = runner.invoke(cli, ["run", str(changed), "--out", str(out), "--base-url", fake_openai.base_url,
                            "--api-key", "k", "--limit", "20", "--restart"])
    assert r.exit_code == 0, r.output


def test_identical_prompts_are_generated_once(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    res = run(sample, tmp_path / "out", fake_openai)
    d = res.manifest["dedup"]
    assert d["dedup_ratio"] > 0  # tier-1 members of a segment share one prompt
    assert d["model_calls"] == len(fake_openai.requests)
    # a second run into a new folder reuses nothing (a fresh store), a re-run of the same folder calls nothing
    assert d["lookups"] > d["model_calls"]


def test_cli_run_prints_summary_and_bad_campaign_is_clear(sample, tmp_path, fake_openai):
    fake_openai.responder = responders.copywriter
    runner = CliRunner()
    r = runner.invoke(cli, ["run", str(sample["campaign"]), "--out", str(tmp_path / "o"), "--base-url",
                            fake_openai.base_url, "--api-key", "k", "--limit", "15"])
    assert r.exit_code == 0, r.output
    assert "outcomes:" in r.output and "messages.jsonl" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(sample["campaign"].read_text().replace("send_date:", "send_dat:"))
    r = runner.invoke(cli, ["run", str(bad), "--out", str(tmp_path / "o2"), "--base-url", fake_openai.base_url])
    assert r.exit_code == 2
    assert "error:" in r.output and str(bad) in r.output and "send_dat" in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "o2").exists()  # stopped before any model call or output


def test_push_sms_inapp_members_end_to_end(sample, tmp_path, fake_openai):
    """Every channel's output passes its own gates or falls back safely, within its limits."""
    fake_openai.responder = responders.copywriter
    run(sample, tmp_path / "out", fake_openai)
    recs = [r for r in records(tmp_path / "out") if r["outcome"] not in ("invalid", "suppressed")]
    by_channel = Counter(r["channel"] for r in recs)
    assert by_channel["email"] and by_channel["push"] and (by_channel["sms"] or by_channel["inapp"]), by_channel
    for r in recs:
        if not r["send"]:
            continue
        assert r["outcome"] in ("approved", "repaired", "fallback", "holdout")
        assert not [f for f in r["findings"] if f["severity"] == "error"] or r["outcome"] == "fallback"
        msg = r["message"]
        if r["channel"] == "sms":
            assert msg["text"].startswith("AthenaPlus: ") and msg["text"].endswith("Reply STOP to opt out.")
            assert len(msg["text"]) <= 160 and msg["text"].isascii()
        elif r["channel"] == "push":
            assert len(msg["title"]) <= 50 and len(msg["body"]) <= 150
            assert msg["url"].startswith("https://athenaplus.example/")
        elif r["channel"] == "inapp":
            assert msg["title"] and len(msg["body"]) <= 250
        else:
            assert msg["subject"] and "Unsubscribe" in msg["footer"]


def test_the_window_keeps_members_flowing_while_one_member_waits(sample, tmp_path, fake_openai):
    """One answer takes 4 s: the other slots keep working meanwhile (a chunked engine waits for its chunk: the
    one it replaced sent 7 requests in that time, the rest of its chunk of 8)."""
    fake_openai.responder = responders.copywriter
    fake_openai.script([{"delay": 4.0}])  # the first request of the run is slow
    res = run(sample, tmp_path / "out", fake_openai, concurrency=4, chunk_size=8)
    assert res.status == "complete"
    slow = fake_openai.requests[0]
    during = [q for q in fake_openai.requests[1:] if slow.t < q.t < slow.t_done]
    assert len(during) >= 24, f"only {len(during)} requests were sent while one member waited"
    # never more than --concurrency; the others overlap the slow one (at zero latency a CPU-bound process
    # need not fill all four slots: how many it fills depends on the machine's speed, not on the window)
    assert 2 <= fake_openai.max_in_flight() <= 4
    w = res.manifest["window"]
    assert w["slots"] == 4 * 4 + 64 and w["commit_every"] == 8 and w["peak_members_in_flight"] <= w["slots"]
