"""The fairness audit: planted group disparities are flagged, chance differences and small groups are not."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.config import FairnessMargins
from contentgen.fairness import age_bands, audit
from contentgen.models import SEGMENTS
from contentgen.report import build_report

MARGINS = FairnessMargins().model_dump()


def hand_run(root: Path, n: int = 12_000, seed: int = 0, *, fallback_fr: float = 0.30, opt_out_65: float = 0.05,
             tiny: int = 60) -> dict[str, Path]:
    """A finished run (messages.jsonl + manifest.json), its members file and outcomes, with two planted gaps:
    fr-CA members fall back to the template far more often, and members 65+ opt out more. A tiny locale
    (``tiny`` members, 'es-US') has a huge gap that must not be flagged."""
    rng = np.random.default_rng(seed)
    run = root / "run"
    run.mkdir(parents=True)
    locale = rng.choice(["en-US", "en-CA", "fr-CA"], size=n, p=[0.7, 0.15, 0.15]).astype(object)
    locale[:tiny] = "es-US"
    age = np.clip(np.round(rng.normal(41, 14, n)), 18, 88).astype(int)  # as in the sample data: ~6% are 65+
    seg = np.array(SEGMENTS)[rng.integers(0, 7, n)]
    tier = rng.integers(1, 4, n)
    holdout = rng.random(n) < 0.05
    p_fb = np.where(locale == "fr-CA", fallback_fr, 0.05)
    p_fb[:tiny] = 0.9
    fb = rng.random(n) < p_fb
    rejected = rng.random(n) < 0.01
    outcome = np.where(holdout, "holdout", np.where(rejected, "rejected", np.where(fb, "fallback", "approved")))
    has_offer = rng.random(n) < 0.4
    recs, members, outs = [], [], []
    for i in range(n):
        mid = f"M{i:05d}"
        sent = outcome[i] in ("approved", "fallback")
        recs.append({"member_id": mid, "outcome": outcome[i], "segment": seg[i], "tier": int(tier[i]),
                     "channel": "email", "variant": "default", "send": bool(sent or outcome[i] == "holdout"),
                     "lever_cell": "", "plan": {"offers": ["OF1"] if has_offer[i] else [], "products": []},
                     "message": None, "findings": []})
        members.append(f"{mid},{age[i]},{locale[i]}")
        if sent or outcome[i] == "holdout":
            opened = rng.random() < 0.3
            p_out = opt_out_65 if age[i] >= 65 else 0.005
            outs.append(f"{mid},{int(sent)},{int(opened)},{int(opened and rng.random() < 0.2)},0,0.00,"
                        f"{int(sent and rng.random() < p_out)},0")
    (run / "messages.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run / "manifest.json").write_text(json.dumps({"campaign_id": "fair", "usage": {}}))
    (root / "members.csv").write_text("member_id,age,locale\n" + "\n".join(members) + "\n")
    (root / "outcomes.csv").write_text("member_id,treated,opened,clicked,purchased,revenue,opted_out,complained\n"
                                       + "\n".join(outs) + "\n")
    return {"run": run, "members": root / "members.csv", "outcomes": root / "outcomes.csv"}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    files = hand_run(tmp_path_factory.mktemp("fair"))
    rep = build_report(files["run"], files["outcomes"], members=files["members"])
    return files, rep


def test_planted_disparities_are_flagged_and_nothing_else(planted):
    _, rep = planted
    fa = rep["fairness"]
    assert fa["dimensions"] == ["age_band", "locale", "tier", "segment"]
    flags = {(f["metric"], f["dimension"], f["group"]) for f in fa["flags"]}
    assert ("fallback_rate", "locale", "fr-CA") in flags
    assert ("opt_out_rate", "age_band", "65+") in flags
    # nothing else differs: only the planted (metric, dimension) pairs have flags; en-US, whose "rest" is mostly
    # fr-CA, may show the mirror image, as served better
    assert {(m, d) for m, d, _ in flags} == {("fallback_rate", "locale"), ("opt_out_rate", "age_band")}, flags
    served = {(f["dimension"], f["group"]): f["served"] for f in fa["flags"]}
    assert served[("locale", "fr-CA")] == "worse" and served[("age_band", "65+")] == "worse"
    assert all(v == "better" for k, v in served.items() if k not in {("locale", "fr-CA"), ("age_band", "65+")})


def test_small_groups_are_shown_not_flagged(planted):
    _, rep = planted
    rows = rep["fairness"]["metrics"]["fallback_rate"]["by"]["locale"]
    es = next(r for r in rows if r["group"] == "es-US")
    assert es["small_n"] and not es["flagged"] and es["diff"] > 0.5  # a huge gap, in too few members


def test_no_planted_gap_no_flag(tmp_path):
    files = hand_run(tmp_path, n=8000, seed=3, fallback_fr=0.05, opt_out_65=0.005, tiny=0)
    rep = build_report(files["run"], files["outcomes"], members=files["members"])
    assert rep["fairness"]["flags"] == []


def test_margins_decide(planted):
    files, rep = planted
    from contentgen.report import load_outcomes, load_run

    run, _ = load_run(files["run"])
    joined = run[run["arm"] != "excluded"].merge(load_outcomes(files["outcomes"]), on="member_id")
    groups = pd.read_csv(files["members"], dtype={"member_id": str})
    groups = pd.DataFrame({"member_id": groups["member_id"], "age_band": age_bands(groups["age"]),
                           "locale": groups["locale"]})
    loose = audit(run, joined, groups, None, {**MARGINS, "fallback": 0.5, "opt_out": 0.2}, 100)
    assert loose["flags"] == []
    strict = audit(run, joined, groups, None, MARGINS, 100)
    assert len(strict["flags"]) == len(rep["fairness"]["flags"])


def test_without_members_file_age_and_locale_are_missing(planted):
    files, _ = planted
    rep = build_report(files["run"], files["outcomes"])
    fa = rep["fairness"]
    assert fa["missing_dimensions"] == ["age_band", "locale"] and any("--members" in n for n in fa["notes"])


def test_calibration_flags_only_gaps_beyond_the_margin():
    score = {"churn": {"calibration_by_group": {"locale": [
        {"group": "en-CA", "n": 900, "mean_predicted": 0.30, "observed": 0.41, "observed_ci": [0.378, 0.443],
         "difference": 0.11},
        {"group": "en-US", "n": 5000, "mean_predicted": 0.30, "observed": 0.33, "observed_ci": [0.317, 0.343],
         "difference": 0.03},
        {"group": "fr-CA", "n": 40, "mean_predicted": 0.30, "observed": 0.60, "observed_ci": [0.45, 0.74],
         "difference": 0.30}]}}}
    empty = pd.DataFrame({"member_id": [], "outcome": [], "segment": [], "tier": [], "send": [], "lever_cell": []})
    res = audit(empty, pd.DataFrame({"member_id": [], "arm": [], "segment": [], "tier": []}), None, score, MARGINS, 100)
    assert [(f["group"], f["diff_ci"]) for f in res["flags"]] == [("en-CA", [0.078, 0.143])]


def test_report_cli_and_html_show_the_flags(planted, tmp_path):
    files, _ = planted
    res = CliRunner().invoke(cli, ["report", str(files["run"]), "--outcomes", str(files["outcomes"]),
                                   "--members", str(files["members"]), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "fairness: Fallback rate of locale fr-CA" in res.output
    html = (tmp_path / "report.html").read_text()
    assert "Fairness audit" in html and "flagged" in html and "fr-CA" in html
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["fairness"]["flags"]
