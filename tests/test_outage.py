"""A provider outage pauses the run (exit 3) and never pushes members to fallback; --max-cost pauses (exit 5)."""

from __future__ import annotations

import json
from collections import Counter

from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.export import verify
from contentgen.sample_data import write_sample_data
from tests import responders


def _campaign(tmp_path, n=80):
    paths = write_sample_data(tmp_path / "data", n, seed=9, bad_rows=False)
    text = paths["campaign"].read_text()
    paths["campaign"].write_text(text + "llm: {max_retries: 1, outage_after: 3, timeout_s: 5, concurrency: 4}\n")
    return paths


def invoke(paths, out, fake, *extra):
    return CliRunner().invoke(cli, ["run", str(paths["campaign"]), "--out", str(out), "--base-url", fake.base_url,
                                    "--api-key", "k", "--chunk-size", "8", *extra])


def test_outage_pauses_then_the_next_run_completes_without_fallback(tmp_path, fake_openai):
    paths = _campaign(tmp_path)
    out = tmp_path / "out"
    fake_openai.responder = responders.copywriter
    # the provider works for a while, then goes down hard
    fake_openai.script([{}] * 12 + [{"status": 503}] * 400)
    r = invoke(paths, out, fake_openai)
    assert r.exit_code == 3, r.output
    assert "paused" in r.output and "re-run the same command" in r.output
    assert not (out / "messages.jsonl").exists()  # no partial export
    first = [json.dumps(q.body, sort_keys=True) for q in fake_openai.requests if q.status == 200]
    fake_openai.reset()  # the provider is back
    fake_openai.responder = responders.copywriter
    r = invoke(paths, out, fake_openai)
    assert r.exit_code == 0, r.output
    recs = [json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()]
    got = Counter(x["outcome"] for x in recs)
    assert got["fallback"] == 0 and got["rejected"] == 0, got  # nobody was pushed to fallback by the outage
    assert verify(out)["members"] == len(recs)
    ok = first + [json.dumps(q.body, sort_keys=True) for q in fake_openai.requests if q.status == 200]
    assert len(ok) == len(set(ok)), "a prompt was generated twice"


def test_max_cost_pauses_and_resumes_with_a_higher_limit(tmp_path, fake_openai):
    paths = _campaign(tmp_path, 60)
    out = tmp_path / "out"
    fake_openai.responder = responders.copywriter
    r = invoke(paths, out, fake_openai, "--model", "gpt-4o-mini", "--max-cost", "0.0006")
    assert r.exit_code == 5, r.output
    assert "spending limit reached" in r.output
    calls = len(fake_openai.requests)
    assert calls > 0
    r = invoke(paths, out, fake_openai, "--model", "gpt-4o-mini", "--max-cost", "5")
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["cost_usd"] > 0.0006 and m["usage"]["requests"] == len(fake_openai.requests)


def test_intermittent_failures_never_push_members_to_fallback_nor_pay_twice(tmp_path, fake_openai):
    """75% of answers are 500s: each run either finishes or pauses (exit 3); re-runs finish the job, every
    member once, nobody in fallback because of the provider, no paid prompt asked twice, every answer counted."""
    paths = _campaign(tmp_path, 60)
    out = tmp_path / "out"
    fake_openai.responder = responders.copywriter
    fake_openai.set_faults(rate_500=0.75, seed=3)
    codes = []
    for _ in range(40):
        r = invoke(paths, out, fake_openai)
        codes.append(r.exit_code)
        assert r.exit_code in (0, 3), r.output
        assert "Traceback" not in r.output
        if r.exit_code == 0:
            break
        assert not (out / "messages.jsonl").exists()
    assert codes[-1] == 0, codes
    assert 3 in codes, codes  # the failures did pause it at least once
    recs = [json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()]
    got = Counter(x["outcome"] for x in recs)
    assert got["fallback"] == 0 and got["rejected"] == 0, got
    assert verify(out)["members"] == len(recs) == 60
    ok = [json.dumps(q.body, sort_keys=True) for q in fake_openai.requests if q.status == 200]
    assert len(ok) == len(set(ok)), "a paid prompt was asked twice"
    m = json.loads((out / "manifest.json").read_text())
    assert m["usage"]["requests"] == len(ok) and 1 < m["processes"] <= len(codes)


def test_max_cost_is_never_passed_by_more_than_one_request(tmp_path, fake_openai):
    """--max-cost reserves each request's worst case before sending: the ledger (every answer the provider gave)
    stays under the cap, the pause comes when the next request could not fit, and the cost is exact."""
    import sqlite3

    paths = _campaign(tmp_path, 60)
    out = tmp_path / "out"
    fake_openai.responder = responders.copywriter
    cap = 0.0009
    r = invoke(paths, out, fake_openai, "--model", "gpt-4o-mini", "--max-cost", str(cap), "--concurrency", "16")
    assert r.exit_code == 5, r.output
    db = sqlite3.connect(out / "run.db")
    n, cost = db.execute("SELECT COUNT(*), SUM(cost_usd) FROM ledger").fetchone()
    db.close()
    ok = [q for q in fake_openai.requests if q.status == 200]
    assert n == len(ok) > 0  # every answer the provider gave is in the store, before any export
    # price gpt-4o-mini (the campaign's table): what the provider's answers cost by its own token counts
    billed = sum(q.prompt_tokens * 0.15 + q.completion_tokens * 0.60 for q in ok) / 1e6
    assert billed <= cap * 1.02, (billed, cap)  # cached tokens only make it cheaper
    assert abs(cost - billed) <= billed * 0.5
    # the limit held back only what could not fit: one more worst-case request would have passed it
    one = max(q.prompt_tokens for q in ok) * 0.15e-6 + 400 * 0.60e-6
    assert billed + one > cap * 0.5
    r = invoke(paths, out, fake_openai, "--model", "gpt-4o-mini", "--max-cost", "5")
    assert r.exit_code == 0, r.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["usage"]["requests"] == len([q for q in fake_openai.requests if q.status == 200])
