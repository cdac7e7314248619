"""``contentgen rules impact OLD NEW --on RUN_DIR`` on a real run (fake OpenAI server on loopback)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.gates.impact import rules_impact, run_messages
from contentgen.pipeline import RunOptions, run_campaign
from contentgen.sample_data import write_sample_data

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, _fake_openai_server):
    _fake_openai_server.reset()
    sample = write_sample_data(tmp_path_factory.mktemp("data"), 40, seed=5)
    out = tmp_path_factory.mktemp("run")
    run_campaign(sample["campaign"], RunOptions(out=out, base_url=_fake_openai_server.base_url, api_key="k"))
    return out


def _rules(tmp_path: Path, name: str) -> Path:
    d = tmp_path / name
    for sub in ("brand_rules", "compliance"):
        shutil.copytree(REPO / sub, d / sub)
    return d


def test_unchanged_rules_change_nothing(run_dir, tmp_path):
    old = _rules(tmp_path, "old")
    imp = rules_impact(old, old, run_dir)
    assert imp.messages > 20 and not imp.rules and not imp.verdicts


def _ban(root: Path, phrase: str) -> None:
    banned = root / "brand_rules" / "banned-words.yaml"
    banned.write_text(banned.read_text(encoding="utf-8").replace(
        "      - 'dirt[- ]cheap'\n", f"      - 'dirt[- ]cheap'\n      - '{phrase}'\n", 1), encoding="utf-8")


def test_an_edit_is_reported_per_rule_with_examples(run_dir, tmp_path):
    # (the fake model's drafts fail the gates, so the run's messages are the pre-approved fallbacks)
    old, new = _rules(tmp_path, "old"), _rules(tmp_path, "new")
    _ban(old, "stock up")  # a ban the edit lifts: messages it flagged are cleared
    _ban(new, "no rush")   # a ban the edit adds: messages newly flagged
    tier2 = new / "compliance" / "tier2.yaml"  # and a rule the edit drops
    text = tier2.read_text(encoding="utf-8")
    tier2.write_text("family: tier2\nrules:\n" + text[text.index("  - id: compliance.tier2-predicted"):],
                     encoding="utf-8")
    imp = rules_impact(old, new, run_dir, examples=2)
    ri = imp.rules["brand.banned-words"]
    assert ri.n_flagged > 0 and ri.n_cleared > 0
    assert len(ri.flagged) == 2 and all(e["excerpt"].lower() == "no rush" for e in ri.flagged)
    assert all(e["excerpt"].lower() == "stock up" and e["member_id"] for e in ri.cleared)
    assert imp.removed_rules == ["compliance.tier2-browsing"] and imp.added_rules == []
    assert imp.verdicts["pass -> fail"] == ri.n_flagged and imp.verdicts["fail -> pass"] == ri.n_cleared
    assert set(imp.rules) == {"brand.banned-words"}

    res = CliRunner().invoke(cli, ["rules", "impact", str(old), str(new), "--on", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert f"brand.banned-words: newly flags {ri.n_flagged} message(s), no longer flags {ri.n_cleared}" in res.output
    assert '"no rush"' in res.output and '"stock up"' in res.output and "rules only in old: compliance.tier2" in res.output
    res = CliRunner().invoke(cli, ["rules", "impact", str(old), str(new), "--on", str(run_dir), "--json"])
    data = json.loads(res.stdout)
    assert data["rules"]["brand.banned-words"]["newly_flagged"] == ri.n_flagged


def test_contexts_are_the_runs(run_dir):
    """Re-gated with the rules the run used, every message gets the run's judgement: a model message
    its own error findings, a fallback (judged as tier 1) no error."""
    from contentgen.gates import load_rules, run_gates, verdict

    rules = load_rules()
    records = {json.loads(x)["member_id"]: json.loads(x) for x in (run_dir / "messages.jsonl").read_text().splitlines()}
    n = 0
    for g in run_messages(run_dir):
        findings = run_gates(g.message, g.ctx, rules)
        if g.outcome in ("fallback", "holdout"):
            segment_message = records[g.member_id].get("fallback") != "personal"
            # a segment message is judged as tier 1; a personal fallback (tiers 2-3 only) on the member's own tier
            assert (g.ctx.member.opt_in_tier == 1) if segment_message else (g.ctx.member.opt_in_tier >= 2)
            assert verdict(findings) != "fail", (g.member_id, findings)
        else:
            got = sorted((f.rule_id, f.field) for f in findings if f.severity == "error")
            want = sorted((f["rule_id"], f["field"]) for f in records[g.member_id]["findings"] if f["severity"] == "error")
            assert got == want, g.member_id
        n += 1
    assert n == sum(1 for r in records.values() if r.get("message"))


def test_bad_arguments_are_clear_errors(run_dir, tmp_path):
    res = CliRunner().invoke(cli, ["rules", "impact", str(tmp_path / "nope"), str(tmp_path), "--on", str(run_dir)])
    assert res.exit_code == 2 and "rules folder not found" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(cli, ["rules", "impact", str(REPO), str(REPO), "--on", str(empty)])
    assert res.exit_code != 0 and "messages.jsonl" in res.output and "Traceback" not in res.output
