"""Per-lever holdout cells: assignment, what each cell switches off, and the report recovering planted lifts."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from contentgen import gates
from contentgen.cli import cli
from contentgen.config import LeverCells, load_campaign
from contentgen.errors import ConfigError
from contentgen.levers import LEVERS, lever_cell, lever_lift
from contentgen.models import SEGMENTS
from contentgen.plan import Planner, holdout_fraction, send_time
from contentgen.prompts import Prompts
from contentgen.repair import Decider, export_record
from contentgen.sample_data import write_sample_data
from contentgen.sample_outcomes import expected_lever_lift, probabilities
from tests.test_plan import CATALOG, OFFERS, campaign, member, recs

CELLS = LeverCells(content=0.1, timing=0.1, channel=0.1, offer=0.1)


def test_cells_are_deterministic_with_the_configured_shares():
    ids = [f"M{i}" for i in range(20_000)]
    got = [lever_cell("camp", m, CELLS) for m in ids]
    assert got == [lever_cell("camp", m, CELLS) for m in ids]
    share = pd.Series(got).value_counts(normalize=True)
    for lever in LEVERS:
        assert abs(share[lever] - 0.1) < 0.01, share
    assert abs(share[""] - 0.6) < 0.015
    assert got != [lever_cell("other", m, CELLS) for m in ids]  # a new campaign re-draws the cells
    # independent of the holdout hash: the holdout's 5% is spread evenly over the cells
    held = np.array([holdout_fraction("camp", m) < 0.05 for m in ids])
    for lever in ("", *LEVERS):
        in_cell = np.array(got) == lever
        assert abs(held[in_cell].mean() - 0.05) < 0.015
    assert {lever_cell("camp", m, LeverCells()) for m in ids[:500]} == {""}


def test_cells_are_validated():
    with pytest.raises(ValueError):
        LeverCells(content=0.2, timing=0.2, channel=0.2, offer=0.2)  # 80% of members off something


def test_campaign_file_error_names_the_key(tmp_path):
    paths = write_sample_data(tmp_path, 30)
    raw = yaml.safe_load(paths["campaign"].read_text())
    raw["levers"] = {"content": 0.1, "timeing": 0.1}
    paths["campaign"].write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as e:
        load_campaign(paths["campaign"])
    assert "levers.timeing" in str(e.value)


def _planners():
    rich = dict(opt_in_tier=3, churn_risk=0.7, channels=("email", "push"), preferred_channel="push",
                last_engaged_hour=100, timezone="America/New_York")
    on = Planner(campaign(), CATALOG, OFFERS)
    cells = Planner(campaign(levers=LeverCells(content=0.12, timing=0.12, channel=0.12, offer=0.12)), CATALOG, OFFERS)
    return on, cells, rich


def test_each_cell_switches_off_its_lever_and_nothing_else():
    on, cells, rich = _planners()
    seen = set()
    for i in range(200):
        m = member(member_id=f"M{i}", **rich)
        a = on.plan(m, recs("P3", "P7", "P1"))
        b = cells.plan(m, recs("P3", "P7", "P1"))
        seen.add(b.lever_cell)
        assert a.lever_cell == "" and a.channel == "push" and a.offers and any(pp.offer for pp in a.products)
        if b.lever_cell == "":
            assert b == a
        elif b.lever_cell == "timing":
            default = int(on.framings.segments[m.segment]["send_hour_of_week"])
            no_hour = m.model_copy(update={"last_engaged_hour": None})
            assert b.send_at == send_time(no_hour, on.campaign.send_date, default) != a.send_at
            assert b.model_copy(update={"send_at": a.send_at, "lever_cell": "", "reason": ""}) == a
        elif b.lever_cell == "channel":
            assert b.channel == "email"
            assert b.model_copy(update={"channel": a.channel, "lever_cell": "", "reason": ""}) == a
        elif b.lever_cell == "offer":
            assert b.offers == () and not any(pp.offer or pp.offer_price for pp in b.products)
            assert [pp.product for pp in b.products] == [pp.product for pp in a.products]
            assert (b.channel, b.send_at, b.framing) == (a.channel, a.send_at, a.framing)
        else:
            assert b.lever_cell == "content" and b.basic
            assert [pp.product for pp in b.products] == [pp.product for pp in on.basic_plan(m).products]
            assert (b.channel, b.send_at) == (a.channel, a.send_at)
    assert seen == {"", *LEVERS}


def test_channel_cell_keeps_a_member_without_email_consent_on_their_channel():
    _, cells, rich = _planners()
    for i in range(200):
        m = member(member_id=f"M{i}", **{**rich, "channels": ("push",)})
        b = cells.plan(m, recs("P3"))
        if b.lever_cell == "channel":
            assert b.channel == "push"
            return
    raise AssertionError("no member in the channel cell")


def test_content_cell_sends_the_template_without_asking_the_model():
    _, cells, rich = _planners()
    c = cells.campaign
    calls = []

    async def generate(messages, schema):
        calls.append(messages)
        raise AssertionError("the content cell must not reach the model")

    decider = Decider(c, Prompts(c.prompts_dir, c), gates.load_rules(c.rules_dirs), generate, OFFERS, CATALOG, cells)
    for i in range(200):
        plan = cells.plan(member(member_id=f"M{i}", **rich), recs("P3", "P7"))
        if plan.lever_cell == "content":
            d = asyncio.run(decider.decide(plan))
            assert d.outcome == "approved" and d.send and d.message is not None and not calls
            assert [a["kind"] for a in d.attempts] == ["fallback"]
            rec = export_record(plan, d, reason=plan.reason, variant=plan.variant)
            assert rec["lever_cell"] == "content" and rec["attempts"] == 0 and rec["send"]
            assert [p["product_id"] for p in rec["plan"]["products"]] == \
                [pp.product.product_id for pp in cells.basic_plan(plan.member).products]
            return
    raise AssertionError("no member in the content cell")


# ------------------------------------------------------------------ the estimator, without a model


def synthetic_run(n: int, seed: int, cells: LeverCells = CELLS, campaign_id: str = "camp") -> pd.DataFrame:
    """What a run with lever cells exports, member by member, plus the members' attributes."""
    rng = np.random.default_rng(seed)
    ids = [f"M{seed}-{i}" for i in range(n)]
    cell = np.array([lever_cell(campaign_id, m, cells) for m in ids], dtype=object)
    holdout = np.array([holdout_fraction(campaign_id, m) < 0.05 for m in ids])
    pref = np.where(rng.random(n) < 0.3, "push", "email")
    channel = np.where((cell == "channel") | holdout, pref, pref)
    channel = np.where(cell == "channel", "email", channel)
    outcome = np.where(holdout, "holdout", np.where(rng.random(n) < 0.9, "approved", "fallback"))
    outcome = np.where(cell == "content", "approved", outcome)
    has_offer = (rng.random(n) < 0.5) & (cell != "offer") & (cell != "content")
    return pd.DataFrame({
        "member_id": ids, "outcome": outcome, "send": True, "segment": np.array(SEGMENTS)[rng.integers(0, 7, n)],
        "tier": rng.integers(1, 4, n), "channel": channel, "lever_cell": np.where(holdout, "", cell),
        "has_offer": has_offer, "churn_risk": rng.beta(2, 5, n), "age": rng.integers(18, 80, n),
        "last_engaged_hour": np.where(rng.random(n) < 0.85, 30.0, np.nan), "preferred_channel": pref,
        "arm": np.where(holdout, "control", "treated")})


def draw(df: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, dict]:
    p = probabilities(df)
    rng = np.random.default_rng(seed)
    n = len(df)
    opened = rng.random(n) < p["open"]
    clicked = opened & (rng.random(n) < p["click_given_open"])
    bought = clicked & (rng.random(n) < p["buy_given_click"])
    out = df.assign(opened=opened.astype(int), clicked=clicked.astype(int), purchased=bought.astype(int),
                    revenue=np.where(bought, p["basket"] * rng.lognormal(0, 0.55, n), 0.0),
                    opted_out=(rng.random(n) < p["opt_out"]).astype(int), complained=0)
    return out, expected_lever_lift(df, p)


METRICS = ("open_rate", "click_rate", "purchase_rate", "revenue_per_member")


def test_report_recovers_each_planted_lever_lift():
    """80,000 members: each lever's interval covers its expected lift, and the levers with a real effect on a
    metric are told apart from zero."""
    df, truth = draw(synthetic_run(80_000, seed=1), seed=2)
    res = lever_lift(df)
    assert res["configured"] and [g["lever"] for g in res["levers"]] == list(LEVERS)
    by = {g["lever"]: g["metrics"] for g in res["levers"]}
    for lever, key in (("content", "open_rate"), ("timing", "open_rate"), ("channel", "open_rate"),
                       ("offer", "purchase_rate")):  # each lever's own metric
        lo, hi = by[lever][key]["diff_ci"]
        assert lo <= truth[lever][key] <= hi, (lever, key, truth[lever][key], lo, hi)
    # all 16 (lever, metric) intervals: 95% each, so one may miss by chance (the test below checks the rate)
    missed = [(lv, k) for lv in LEVERS for k in METRICS
              if not by[lv][k]["diff_ci"][0] <= truth[lv][k] <= by[lv][k]["diff_ci"][1]]
    assert len(missed) <= 1, missed
    assert by["content"]["open_rate"]["diff_ci"][0] > 0
    assert by["timing"]["open_rate"]["diff_ci"][0] > 0
    assert by["channel"]["open_rate"]["diff_ci"][0] > 0
    assert by["offer"]["purchase_rate"]["diff_ci"][0] > 0
    assert by["offer"]["open_rate"]["diff_ci"][0] < 0 < by["offer"]["open_rate"]["diff_ci"][1]  # no open effect


def test_lever_intervals_cover_at_their_nominal_rate():
    """40 independent replications of 12,000 members: each lever's 95% interval covers the expected lift in at
    least 34 of 40 (binomial 5th percentile at 95% coverage is 36)."""
    covered = {(lv, k): 0 for lv in LEVERS for k in METRICS}
    run = synthetic_run(12_000, seed=3)
    for rep in range(40):
        df, truth = draw(run, seed=100 + rep)
        for g in lever_lift(df)["levers"]:
            for key in METRICS:
                lo, hi = g["metrics"][key]["diff_ci"]
                covered[(g["lever"], key)] += lo <= truth[g["lever"]][key] <= hi
    assert min(covered.values()) >= 34, covered


def test_no_cells_no_lever_section():
    df, _ = draw(synthetic_run(500, seed=4, cells=LeverCells()), seed=5)
    assert lever_lift(df)["configured"] is False


# ------------------------------------------------------------------ through the real pipeline


def test_levers_through_a_run_and_the_report(tmp_path, fake_openai):
    from tests import responders
    from contentgen.pipeline import RunOptions, run_campaign

    fake_openai.responder = responders.copywriter
    paths = write_sample_data(tmp_path / "data", 1200, seed=21)
    raw = yaml.safe_load(paths["campaign"].read_text())
    raw["levers"] = {"content": 0.12, "timing": 0.12, "channel": 0.12, "offer": 0.12}
    paths["campaign"].write_text(yaml.safe_dump(raw))
    res = run_campaign(paths["campaign"], RunOptions(out=tmp_path / "run", base_url=fake_openai.base_url,
                                                     api_key="k"))
    assert res.status == "complete"
    recs_ = [json.loads(x) for x in (tmp_path / "run" / "messages.jsonl").read_text().splitlines()]
    cells = pd.Series([r.get("lever_cell", "") for r in recs_ if r["outcome"] not in ("invalid", "suppressed",
                                                                                       "holdout")])
    assert set(cells) == {"", *LEVERS}
    content = [r for r in recs_ if r.get("lever_cell") == "content"]
    assert content and all(r["attempts"] == 0 and r["outcome"] == "approved" and r["send"] for r in content)
    consent = dict(pd.read_csv(paths["members"], dtype=str, keep_default_na=False)[["member_id", "channels"]]
                   .itertuples(index=False))
    in_channel_cell = [r for r in recs_ if r.get("lever_cell") == "channel"]
    assert in_channel_cell and all(r["channel"] == "email" for r in in_channel_cell
                                   if "email" in consent[r["member_id"]].split(";"))
    assert all(not r["plan"]["offers"] for r in recs_ if r.get("lever_cell") == "offer")
    out = CliRunner().invoke(cli, ["sample-outcomes", str(tmp_path / "run")])
    assert out.exit_code == 0, out.output
    rep = CliRunner().invoke(cli, ["report", str(tmp_path / "run"), "--outcomes", str(tmp_path / "run" / "outcomes.csv"),
                                   "--json"])
    assert rep.exit_code == 0, rep.output
    report = json.loads(rep.output)
    truth = json.loads((tmp_path / "run" / "outcomes.truth.json").read_text())
    assert [g["lever"] for g in report["levers"]["levers"]] == list(LEVERS)
    for g in report["levers"]["levers"]:
        lo, hi = g["metrics"]["open_rate"]["diff_ci"]
        assert lo <= truth["expected_lever_lift"][g["lever"]]["open_rate"] <= hi
    html = (tmp_path / "run" / "report" / "report.html").read_text()
    assert "Which lever drove it?" in html and "Fairness audit" in html


def test_timing_cell_gets_the_offers_valid_on_its_own_delivery_day():
    """The timing cell is sent at the segment's default hour, so its offers are those valid on that delivery
    day, not on the day the member's best hour would have delivered it (an offer ending in between must go)."""
    from contentgen.models import Offer
    from contentgen.plan import delivery_date

    rich = dict(opt_in_tier=3, churn_risk=0.7, channels=("email",), timezone="America/New_York")
    probe = Planner(campaign(levers=LeverCells(timing=0.12)), CATALOG, OFFERS)
    checked = 0
    for i in range(400):
        for hour in (2, 60, 100, 150):
            m = member(member_id=f"M{i}", last_engaged_hour=hour, **rich)
            if probe.lever_cell(m) != "timing":
                continue
            best_day = delivery_date(m, probe.send_at(m))
            cell_day = delivery_date(m, probe.send_at(m.model_copy(update={"last_engaged_hour": None})))
            if best_day == cell_day:
                continue
            only = lambda oid, day, pid: Offer(offer_id=oid, kind="percent_off", value=10, applies_to=(pid,),  # noqa: E731
                                               valid_from=day, valid_until=day)
            offers = [only("ON-BEST-DAY", best_day, "P3"), only("ON-CELL-DAY", cell_day, "P3")]
            pl = Planner(campaign(levers=LeverCells(timing=0.12)), CATALOG, offers)
            on = Planner(campaign(), CATALOG, offers)
            for plan in (pl.plan(m, recs("P3", "P7")), pl.basic_plan(m)):
                assert plan.lever_cell in ("timing", "")
                assert delivery_date(plan) == cell_day
                given = {o.offer_id for o in plan.offers} | {pp.offer.offer_id for pp in plan.products if pp.offer}
                assert "ON-BEST-DAY" not in given, (hour, best_day, cell_day, given)
            full = pl.plan(m, recs("P3", "P7"))
            assert [pp.offer.offer_id for pp in full.products if pp.offer] == ["ON-CELL-DAY"]
            # all levers on: the member's best hour, and that day's offer
            assert [pp.offer.offer_id for pp in on.plan(m, recs("P3", "P7")).products if pp.offer] == ["ON-BEST-DAY"]
            checked += 1
    assert checked >= 5, checked
