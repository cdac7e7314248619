"""Thompson-sampling allocator: weights, floor, determinism, and the `contentgen allocate` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from contentgen.allocate import VariantStats, allocate, apply_floor, thompson_weights
from contentgen.cli import cli
from contentgen.errors import ContentgenError


def test_clearly_better_variant_gets_most_weight():
    res = thompson_weights([VariantStats("a", 1000, 50), VariantStats("b", 1000, 120), VariantStats("c", 1000, 60)],
                           floor=0.05, seed=0)
    w = res["weights"]
    assert w["b"] > 0.85
    assert w["a"] == pytest.approx(0.05) and w["c"] == pytest.approx(0.05)
    assert sum(w.values()) == pytest.approx(1.0)
    # posterior summaries: Beta(1 + s, 1 + f)
    b = next(v for v in res["variants"] if v["name"] == "b")
    assert b["posterior_mean"] == pytest.approx(121 / 1002)
    lo, hi = b["credible_interval"]
    assert lo < 121 / 1002 < hi and hi - lo < 0.05
    assert b["p_best"] > 0.99


def test_floor_respected_and_mass_taken_proportionally():
    w = apply_floor({"a": 0.9, "b": 0.08, "c": 0.02, "d": 0.0}, 0.05)
    assert w["c"] == pytest.approx(0.05) and w["d"] == pytest.approx(0.05)
    # 0.9 mass left for a and b in their ratio 0.9 : 0.08
    assert w["a"] == pytest.approx(0.9 * 0.9 / 0.98) and w["b"] == pytest.approx(0.9 * 0.08 / 0.98)
    assert sum(w.values()) == pytest.approx(1.0)
    # a second round: b falls below the floor after the first rescale
    w = apply_floor({"a": 0.949, "b": 0.051, "c": 0.0}, 0.05)
    assert w["b"] == pytest.approx(0.05) and w["c"] == pytest.approx(0.05) and w["a"] == pytest.approx(0.9)
    for floor in (0.0, 0.1, 0.2, 0.25):
        res = thompson_weights([VariantStats(n, 500, s) for n, s in zip("abcd", (10, 40, 11, 12))], floor=floor)
        assert min(res["weights"].values()) >= floor - 1e-12
        assert sum(res["weights"].values()) == pytest.approx(1.0)
    with pytest.raises(ContentgenError, match="impossible"):
        apply_floor({"a": 0.5, "b": 0.3, "c": 0.2}, 0.4)


def test_deterministic_for_a_seed():
    stats = [VariantStats("a", 200, 20), VariantStats("b", 200, 24)]
    r1 = thompson_weights(stats, seed=3)
    r2 = thompson_weights(stats, seed=3)
    r3 = thompson_weights(stats, seed=4)
    assert r1 == r2
    assert r1["weights"] != r3["weights"]


def test_equal_variants_get_equal_weights():
    res = thompson_weights([VariantStats(n, 1000, 100) for n in ("a", "b", "c")], floor=0.05, seed=0, draws=40000)
    for w in res["weights"].values():
        assert w == pytest.approx(1 / 3, abs=0.02)


def test_no_data_means_uniform_prior():
    res = thompson_weights([VariantStats("a", 0, 0), VariantStats("b", 0, 0)], seed=1, draws=40000)
    assert res["variants"][0]["posterior_mean"] == 0.5
    assert res["variants"][0]["credible_interval"] == pytest.approx([0.025, 0.975])
    assert res["weights"]["a"] == pytest.approx(0.5, abs=0.02)


def _variant_run(root: Path) -> tuple[Path, Path]:
    """Variant 'warm' (60 sent, 24 clicks), 'plain' (60 sent, 6 clicks), 5 holdout; 1 unknown outcome row."""
    run = root / "run"
    run.mkdir()
    recs, rows = [], ["member_id,opened,clicked,purchased,revenue,opted_out,complained"]
    for name, clicks in (("warm", 24), ("plain", 6)):
        for i in range(60):
            mid = f"{name}-{i}"
            recs.append({"member_id": mid, "outcome": "approved", "segment": "Enthusiasts", "tier": 2,
                         "variant": name, "send": True})
            rows.append(f"{mid},1,{int(i < clicks)},0,0,0,0")
    for i in range(5):
        recs.append({"member_id": f"h{i}", "outcome": "holdout", "segment": "Enthusiasts", "tier": 2,
                     "variant": "default", "send": False})
        rows.append(f"h{i},1,1,0,0,0,0")  # holdout clicks must not count for any variant
    rows.append("stranger,1,1,1,10,0,0")
    (run / "messages.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run / "manifest.json").write_text(json.dumps({"campaign_id": "v", "usage": {}, "cost_usd": 0}))
    out = root / "outcomes.csv"
    out.write_text("\n".join(rows) + "\n")
    return run, out


def test_allocate_joins_run_variants(tmp_path):
    run, outcomes = _variant_run(tmp_path)
    res = allocate(run, outcomes, metric="clicked", floor=0.1, seed=0)
    by = {v["name"]: v for v in res["variants"]}
    assert (by["warm"]["trials"], by["warm"]["successes"]) == (60, 24)
    assert (by["plain"]["trials"], by["plain"]["successes"]) == (60, 6)
    assert by["warm"]["posterior_mean"] == pytest.approx(25 / 62)
    assert res["data"] == {"matched": 120, "unknown_member_ids": 1, "treated_without_outcome": 0}
    assert res["rounded_weights"] == {"plain": 0.1, "warm": 0.9}


def test_allocate_cli_prints_pasteable_yaml(tmp_path):
    run, outcomes = _variant_run(tmp_path)
    args = ["allocate", "--outcomes", str(outcomes), "--run", str(run), "--metric", "clicked", "--floor", "0.05",
            "--seed", "7"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    doc = yaml.safe_load(res.stdout)
    weights = {v["name"]: v["weight"] for v in doc["variants"]}
    assert set(weights) == {"warm", "plain"}
    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights["warm"] > 0.9 and weights["plain"] == pytest.approx(0.05)
    assert "posterior mean" in res.stdout and "95% credible interval" in res.stdout
    assert CliRunner().invoke(cli, args).stdout == res.stdout  # same seed, same output


def test_allocate_bad_outcomes(tmp_path):
    run, outcomes = _variant_run(tmp_path)
    outcomes.write_text(outcomes.read_text().replace("warm-3,1,1,", "warm-3,1,y,"))
    res = CliRunner().invoke(cli, ["allocate", "--outcomes", str(outcomes), "--run", str(run)])
    assert res.exit_code == 2
    assert f"{outcomes}:5: column 3 (clicked): 'y' is not 0 or 1" in res.stderr
