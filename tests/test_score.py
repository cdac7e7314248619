"""contentgen score: raw sample data with a known truth -> members and recommendations the run can use.

One module-wide sample (3,000 members, `sample-data --raw`) scored once; the
tests compare what score found with the simulation's ground truth
(raw/truth_members.csv) and check the files against what `contentgen run` reads.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.errors import InputFileError
from contentgen.load import iter_members, load_catalog
from contentgen.models import EVIDENCE_SOURCES, SEGMENTS, TIER_SOURCES
from contentgen.plan import soften_detail
from contentgen.sample_data import INJECTION_TEXTS, write_sample_data
from contentgen.score import ScoreOptions, find_inputs, run_score

N = 5000


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    paths = write_sample_data(root, N, seed=5, raw=True)
    out = root / "scored"
    rep = run_score(find_inputs(root / "raw"), ScoreOptions(out=out, campaign=paths["campaign"]))
    members = pd.read_csv(out / "members.csv", dtype={"member_id": str})
    recs = [json.loads(x) for x in (out / "recommendations.jsonl").read_text().splitlines()]
    truth = pd.read_csv(root / "raw" / "truth_members.csv", dtype={"member_id": str})
    return {"root": root, "paths": paths, "out": out, "report": rep, "members": members, "recs": recs,
            "truth": truth, "joined": members.merge(truth, on="member_id", suffixes=("", "_true"))}


def test_outputs_are_what_run_reads(scored):
    out = scored["out"]
    catalog, _ = load_catalog(scored["paths"]["catalog"])
    rows = list(iter_members(out / "members.csv", out / "recommendations.jsonl", catalog))
    assert len(rows) == len(scored["members"]) == scored["report"]["rows"]["members"]
    assert all(r.member is not None and not r.quarantined for r in rows)  # every row valid, every product known
    # the members file keeps the attribute file's order (quarantined attribute rows left out)
    attrs = pd.read_csv(scored["root"] / "raw" / "attributes.csv", dtype=str, keep_default_na=False)
    expected = [m for m in attrs["member_id"] if m]
    expected = list(dict.fromkeys(expected))  # the repeated id: first row wins
    bad_tier = set(attrs.loc[~attrs["opt_in_tier"].isin(["1", "2", "3"]), "member_id"])
    assert [r.member.member_id for r in rows] == [m for m in expected if m not in bad_tier]
    assert [r["member_id"] for r in scored["recs"]] == [r.member.member_id for r in rows]
    # the campaign written next to them runs (a dry run plans every member)
    res = CliRunner().invoke(cli, ["run", str(out / "campaign.yaml"), "--dry-run"])
    assert res.exit_code == 0, res.output
    dry = json.loads(res.output[res.output.index("{"):])
    assert dry["members"] == len(rows) and dry["quarantined_rows"] == 0


def test_segments_recover_the_truth(scored):
    j = scored["joined"]
    assert set(j["segment"]) == set(SEGMENTS)
    agree = (j["segment"] == j["segment_true"]).mean()
    engaged = j[j["engaged_on_send_date"]]
    assert agree > 0.6, agree
    assert (engaged["segment"] == engaged["segment_true"]).mean() > 0.7
    # New Members is a rule: enrolled within 90 days of the as-of date, exactly
    attrs = pd.read_csv(scored["root"] / "raw" / "attributes.csv", dtype=str, keep_default_na=False)
    enrolled = dict(zip(attrs["member_id"], attrs["enrolled_on"]))
    days = j["member_id"].map(lambda m: (dt.date(2026, 11, 24) - dt.date.fromisoformat(enrolled[m])).days)
    assert ((days < 90) == (j["segment"] == "New Members")).all()
    seg = scored["report"]["segments"]
    assert seg["stability"]["agreement"] >= 0.85 and seg["stability"]["stable"]
    assert set(seg["stability"]["by_segment"]) == set(SEGMENTS)
    assert {c["segment"] for c in seg["clusters"]} >= set(SEGMENTS) - {"New Members"}


def test_churn_is_discriminating_and_calibrated(scored):
    from sklearn.metrics import roc_auc_score

    ch = scored["report"]["churn"]
    v = ch["validation"]
    assert ch["train"]["cutoff"] < v["cutoff"]  # validated on a later snapshot than it was fitted on
    assert v["auc"] > 0.85 and v["ece"] < 0.05, v
    assert sum(r["n"] for r in v["reliability"]) == v["n"]
    j = scored["joined"]
    # against the simulation's future (never in the raw files)
    assert roc_auc_score(j["churned_90d"], j["churn_risk"]) > 0.85
    assert abs(j["churn_risk"].mean() - j["churned_90d"].mean()) < 0.06
    assert j["churn_risk"].between(0, 1).all()


def test_planted_calibration_gap_is_flagged_by_the_audit(scored):
    """The raw data plant abrupt, unannounced churn for en-CA members: the audit flags that locale, not en-US."""
    from contentgen.fairness import audit

    by = scored["report"]["churn"]["calibration_by_group"]
    ca = next(r for r in by["locale"] if r["group"] == "en-CA")
    assert ca["observed"] - ca["mean_predicted"] > 0.05
    empty = pd.DataFrame({"member_id": [], "outcome": [], "segment": [], "tier": [], "send": [], "lever_cell": []})
    res = audit(empty, pd.DataFrame({"member_id": [], "arm": [], "segment": [], "tier": []}), None,
                scored["report"], {"outcome": .03, "fallback": .05, "rejection": .02, "offer": .1, "opt_out": .005,
                                   "calibration": .05}, 100)
    flagged = {(f["dimension"], f["group"]) for f in res["flags"]}
    assert ("locale", "en-CA") in flagged and ("locale", "en-US") not in flagged
    assert not any(d == "tier" for d, _ in flagged)


def test_recommender_beats_popularity(scored):
    r = scored["report"]["affinity"]["recall_at_10"]
    assert r["members"] >= 100
    assert r["recall_model"] > r["recall_popularity"]
    assert r["difference_ci"][0] > 0, r  # the whole interval of the paired difference


def test_evidence_follows_the_tier_rules(scored):
    tiers = dict(zip(scored["members"]["member_id"], scored["members"]["opt_in_tier"]))
    prefs = dict(zip(scored["members"]["member_id"], scored["members"]["stated_preferences"].fillna("")))
    n_personal = 0
    for line in scored["recs"]:
        tier = tiers[line["member_id"]]
        if tier == 1:
            assert line["recommendations"] == [] and "recently_bought" not in line  # no behavioural data used
            continue
        for rec in line["recommendations"]:
            n_personal += 1
            assert rec["evidence"]
            for ev in rec["evidence"]:
                assert ev["source"] in EVIDENCE_SOURCES
                assert not re.search(r"\d", ev["detail"]), ev  # no counts, dates or times
                assert soften_detail(ev["detail"]) == ev["detail"]
                pref = prefs[line["member_id"]]
                assert not pref or pref not in ev["detail"]  # never the member's own words
                if tier == 2:
                    assert ev["source"] in TIER_SOURCES[2], ev  # browsing and predictions are tier 3 only
    assert n_personal > 1000
    text = (scored["out"] / "recommendations.jsonl").read_text()
    assert not any(t in text for t in INJECTION_TEXTS)


def test_tier2_scores_never_use_browsing(scored, tmp_path):
    """Tier-2 members' recommendations are the same with and without their product views."""
    raw = scored["root"] / "raw"
    events = pd.read_csv(raw / "events.csv", dtype=str, keep_default_na=False)
    tier2 = set(scored["members"].loc[scored["members"]["opt_in_tier"] == 2, "member_id"])
    keep = ~((events["event"] == "browse") & events["member_id"].isin(tier2))
    (tmp_path / "raw").mkdir()
    events[keep].to_csv(tmp_path / "raw" / "events.csv", index=False)
    inputs = find_inputs(raw, events=tmp_path / "raw" / "events.csv")
    run_score(inputs, ScoreOptions(out=tmp_path / "out", campaign=scored["paths"]["campaign"]))
    again = [json.loads(x) for x in (tmp_path / "out" / "recommendations.jsonl").read_text().splitlines()]
    before = {r["member_id"]: [x["product_id"] for x in r["recommendations"]] for r in scored["recs"]}
    after = {r["member_id"]: [x["product_id"] for x in r["recommendations"]] for r in again}
    assert all(before[m] == after[m] for m in tier2)


def test_best_hour_recovered(scored):
    j = scored["joined"].dropna(subset=["last_engaged_hour", "best_hour_of_week"])
    assert len(j) > 1000
    near = ((j["last_engaged_hour"] - j["best_hour_of_week"]).abs() <= 1).mean()
    assert near > 0.85, near


def test_bad_raw_rows_are_quarantined_and_the_rest_goes_on(scored):
    q = [json.loads(x) for x in (scored["out"] / "score_quarantine.jsonl").read_text().splitlines()]
    by = {(Path(r["file"]).name, r["field"]) for r in q}
    assert ("attributes.csv", "member_id") in by and ("attributes.csv", "opt_in_tier") in by
    assert ("transactions.csv", "member_id") in by and ("transactions.csv", "amount") in by
    assert ("events.csv", "event") in by and ("events.csv", "member_id") in by
    tx = pd.read_csv(scored["root"] / "raw" / "transactions.csv", dtype=str, keep_default_na=False)
    for r in q:  # each record's line is the row it names
        if r["file"].endswith("transactions.csv") and r["field"] == "amount":
            assert float(tx.iloc[r["line"] - 2]["amount"]) < 0
        if r["file"].endswith("transactions.csv") and r["field"] == "member_id" and r["member_id"]:
            assert tx.iloc[r["line"] - 2]["member_id"] == r["member_id"]
    assert scored["report"]["quarantine"]["rows"] == sum(x["rows"] for x in scored["report"]["quarantine"]["by_field"])


def test_partitions_do_not_change_the_result(scored, tmp_path):
    """Streaming in blocks of 700 members gives the same files as one block (fit sample = every member)."""
    run_score(find_inputs(scored["root"] / "raw"),
              ScoreOptions(out=tmp_path, campaign=scored["paths"]["campaign"], block=700))
    for name in ("members.csv", "recommendations.jsonl"):
        assert (tmp_path / name).read_bytes() == (scored["out"] / name).read_bytes(), name


def test_parquet_inputs_and_output(tmp_path):
    paths = write_sample_data(tmp_path, 1200, seed=9, fmt="parquet", raw=True)
    assert paths["raw_transactions"].suffix == ".parquet"
    rep = run_score(find_inputs(tmp_path / "raw"),
                    ScoreOptions(out=tmp_path / "out", campaign=paths["campaign"], fmt="parquet"))
    df = pd.read_parquet(tmp_path / "out" / "members.parquet")
    assert len(df) == rep["rows"]["members"] and set(df["segment"]) <= set(SEGMENTS)
    assert rep["churn"]["validation"]["auc"] > 0.8


def test_missing_column_is_a_clear_error(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "attributes.csv").write_text("member_id,opt_in_tier\nM1,2\n")
    (raw / "transactions.csv").write_text("member_id,ts,product_id\nM1,2026-01-01T10:00:00Z,P1\n")
    (raw / "events.csv").write_text("member_id,ts,event\n")
    (tmp_path / "catalog.csv").write_text("product_id,name,category,price\nP1,A thing,home,10\n")
    with pytest.raises(InputFileError) as e:
        run_score(find_inputs(raw), ScoreOptions(out=tmp_path / "out", catalog=tmp_path / "catalog.csv"))
    assert "transactions.csv:1" in str(e.value) and "amount" in str(e.value)
    res = CliRunner().invoke(cli, ["score", str(raw), "--out", str(tmp_path / "out"), "--catalog",
                                   str(tmp_path / "catalog.csv")])
    assert res.exit_code == 2 and "missing column(s) amount" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["score", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"), "--catalog",
                                   str(tmp_path / "catalog.csv")])
    assert res.exit_code == 2 and "attributes file not found" in res.output
    assert not (tmp_path / "out" / "members.csv").exists()


def test_cli_prints_the_figures(scored, tmp_path):
    res = CliRunner().invoke(cli, ["score", str(scored["root"] / "raw"), "--out", str(tmp_path),
                                   "--campaign", str(scored["paths"]["campaign"])])
    assert res.exit_code == 0, res.output
    assert "recall@10" in res.output and "validation AUC" in res.output and "week-over-week agreement" in res.output
    assert (tmp_path / "score_report.json").is_file() and (tmp_path / "campaign.yaml").is_file()
