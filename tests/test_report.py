"""contentgen report: figures checked against hand calculations on a tiny hand-made run.

The hand-made run (see ``hand_run``):

=====  ===========  ====  ===========  ===  =======================================================
group  segment      tier  run outcome   n   outcomes
=====  ===========  ====  ===========  ===  =======================================================
A      Enthusiasts  2     approved      40  20 opened, 8 clicked, 4 purchased ($50 each), 1 opt-out
B      Enthusiasts  2     holdout       30  9 opened, 3 clicked, 1 purchased ($40), CSV says H001 treated
C      Browsers     3     repaired      10  5 opened, 1 clicked, 0 purchased, 1 complaint
D      Browsers     1     fallback       6  1 opened, 1 opt-out; D6 has no outcome row
E      Browsers     3     holdout        5  1 opened
R      Browsers     1     review         2  (excluded)
J      Browsers     3     rejected       1  (excluded)
S      Enthusiasts  2     suppressed     3  outcome rows present (excluded)
I      VIP          4     invalid        1  (excluded)
=====  ===========  ====  ===========  ===  =======================================================

plus two outcome rows for member ids that are not in the run (X1, X2).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from scipy.stats import t as t_dist

from contentgen.cli import cli
from contentgen.errors import InputFileError
from contentgen.report import build_report, load_outcomes, newcombe_diff, welch_diff, wilson, write_report

Z = 1.959963984540054
HEADER = "member_id,treated,opened,clicked,purchased,revenue,opted_out,complained"


def _members(prefix, n, segment, tier, outcome, send, opened=0, clicked=0, purchased=0, revenue=0.0, opted=0,
             complained=0, treated_flag=None, no_outcome=()):
    """n members; the first `opened` opened, the first `clicked` clicked, ...; returns (records, csv rows)."""
    recs, rows = [], []
    for i in range(1, n + 1):
        mid = f"{prefix}{i:03d}"
        recs.append({"member_id": mid, "outcome": outcome, "segment": segment, "tier": tier, "channel": "email",
                     "variant": "default", "send": send, "message": None, "findings": [], "attempts": 0})
        if mid in no_outcome:
            continue
        flag = treated_flag(i) if treated_flag else int(send)
        rows.append(f"{mid},{flag},{int(i <= opened)},{int(i <= clicked)},{int(i <= purchased)},"
                    f"{revenue if i <= purchased else 0:.2f},{int(i > n - opted - len(no_outcome))},{int(i <= complained)}")
    return recs, rows


def write_hand_run(root: Path) -> tuple[Path, Path]:
    run = root / "run"
    run.mkdir(parents=True)
    groups = [
        _members("A", 40, "Enthusiasts", 2, "approved", True, opened=20, clicked=8, purchased=4, revenue=50.0,
                 opted=1),
        _members("H", 30, "Enthusiasts", 2, "holdout", False, opened=9, clicked=3, purchased=1, revenue=40.0,
                 treated_flag=lambda i: int(i == 1)),
        _members("C", 10, "Browsers", 3, "repaired", True, opened=5, clicked=1, complained=1),
        _members("D", 6, "Browsers", 1, "fallback", True, opened=1, opted=1, no_outcome=("D006",)),
        _members("E", 5, "Browsers", 3, "holdout", False, opened=1),
        _members("R", 2, "Browsers", 1, "review", False),
        _members("J", 1, "Browsers", 3, "rejected", False),
        _members("S", 3, "Enthusiasts", 2, "suppressed", False),
    ]
    recs = [r for g in groups for r in g[0]]
    recs.append({"member_id": "Z001", "outcome": "invalid", "segment": "VIP", "tier": 4, "channel": "email",
                 "variant": "default", "send": False, "message": None, "findings": []})
    rows = [r for g in groups if g[0][0]["outcome"] not in ("review", "rejected") for r in g[1]]
    rows += ["X1,1,1,1,0,0.00,0,0", "X2,0,0,0,0,0.00,0,0"]
    (run / "messages.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    counts = {"approved": 40, "repaired": 10, "fallback": 6, "review": 2, "rejected": 1, "suppressed": 3,
              "holdout": 35, "invalid": 1}
    (run / "manifest.json").write_text(json.dumps({
        "campaign_id": "hand-<made>", "send_date": "2026-03-03", "model": "fake-model",
        "usage": {"prompt_tokens": 5000, "completion_tokens": 600, "cached_tokens": 0, "requests": 70},
        "cost_usd": 0.112, "counts": counts, "total_members": sum(counts.values())}), encoding="utf-8")
    outcomes = root / "outcomes.csv"
    outcomes.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return run, outcomes


@pytest.fixture
def hand(tmp_path):
    run, outcomes = write_hand_run(tmp_path)
    return run, outcomes, build_report(run, outcomes)


def seg(rep, section, name):
    return next(g for g in rep[section]["by_segment"] if g["segment"] == name)


def tier(rep, section, t):
    return next(g for g in rep[section]["by_tier"] if g["tier"] == t)


def hand_wilson(x, n):
    p = x / n
    centre = (x + Z * Z / 2) / (n + Z * Z)
    half = Z / (n + Z * Z) * math.sqrt(x * (n - x) / n + Z * Z / 4)
    return centre - half, centre + half


# ---------------------------------------------------------------- lift


def test_lift_enthusiasts_by_hand(hand):
    _, _, rep = hand
    g = seg(rep, "lift", "Enthusiasts")
    assert (g["n_treated"], g["n_control"], g["small_n"], g["note"]) == (40, 30, False, "")
    m = g["metrics"]
    # open: 20/40 vs 9/30
    assert m["open_rate"]["treated"] == {"n": 40, "successes": 20, "rate": 0.5}
    assert m["open_rate"]["control"] == {"n": 30, "successes": 9, "rate": 0.3}
    assert m["open_rate"]["diff"] == pytest.approx(0.2, abs=1e-6)
    assert m["open_rate"]["rel_lift"] == pytest.approx(0.5 / 0.3 - 1, abs=1e-6)
    # clicks: 8/40 = 0.2 vs 3/30 = 0.1: +0.1, relative +100%
    assert m["click_rate"]["diff"] == pytest.approx(0.1, abs=1e-6)
    assert m["click_rate"]["rel_lift"] == pytest.approx(1.0, abs=1e-6)
    # purchases: 4/40 = 0.1 vs 1/30: relative 0.1 / (1/30) - 1 = 2
    assert m["purchase_rate"]["diff"] == pytest.approx(0.1 - 1 / 30, abs=1e-6)
    assert m["purchase_rate"]["rel_lift"] == pytest.approx(2.0, abs=1e-6)
    # revenue per member: 4 x $50 over 40 = $5; $40 over 30 = $1.3333
    rv = m["revenue_per_member"]
    assert rv["treated"]["mean"] == pytest.approx(5.0)
    assert rv["control"]["mean"] == pytest.approx(40 / 30, abs=1e-6)
    assert rv["diff"] == pytest.approx(5.0 - 40 / 30, abs=1e-6)
    assert rv["rel_lift"] == pytest.approx(5.0 / (40 / 30) - 1, abs=1e-6)


def test_newcombe_interval_by_hand(hand):
    _, _, rep = hand
    ci = seg(rep, "lift", "Enthusiasts")["metrics"]["open_rate"]["diff_ci"]
    # Wilson for 20/40 and 9/30, then Newcombe's hybrid: d -/+ sqrt of the squared inner distances
    l1, u1 = hand_wilson(20, 40)
    l0, u0 = hand_wilson(9, 30)
    lo = 0.2 - math.sqrt((0.5 - l1) ** 2 + (u0 - 0.3) ** 2)
    hi = 0.2 + math.sqrt((u1 - 0.5) ** 2 + (0.3 - l0) ** 2)
    assert ci == pytest.approx([lo, hi], abs=1e-6)
    # spot values: Wilson(20, 40) = [0.3520, 0.6480]
    assert (l1, u1) == pytest.approx((0.35199, 0.64801), abs=1e-4)
    assert ci[0] < 0.2 < ci[1]
    # Katz log interval for the relative lift
    se = math.sqrt(1 / 20 - 1 / 40 + 1 / 9 - 1 / 30)
    rr = 0.5 / 0.3
    rel_ci = seg(rep, "lift", "Enthusiasts")["metrics"]["open_rate"]["rel_lift_ci"]
    assert rel_ci == pytest.approx([rr * math.exp(-Z * se) - 1, rr * math.exp(Z * se) - 1], abs=1e-6)


def test_welch_interval_by_hand(hand):
    _, _, rep = hand
    rv = seg(rep, "lift", "Enthusiasts")["metrics"]["revenue_per_member"]
    # treated: four $50 and 36 zeros; control: one $40 and 29 zeros (sample variances, n - 1)
    v1 = (4 * (50 - 5) ** 2 + 36 * 5 ** 2) / 39 / 40
    m0 = 40 / 30
    v0 = ((40 - m0) ** 2 + 29 * m0 ** 2) / 29 / 30
    df = (v1 + v0) ** 2 / (v1 ** 2 / 39 + v0 ** 2 / 29)
    tq = t_dist.ppf(0.975, df)
    d = 5 - m0
    assert rv["df"] == pytest.approx(df, abs=0.01)
    assert rv["diff_ci"] == pytest.approx([d - tq * math.sqrt(v1 + v0), d + tq * math.sqrt(v1 + v0)], abs=1e-5)
    assert rv["treated"]["sd"] == pytest.approx(math.sqrt(9000 / 39), abs=1e-5)


def test_overall_and_tiers_by_hand(hand):
    _, _, rep = hand
    o = rep["lift"]["overall"]
    # treated with outcomes: A 40 + C 10 + D 5 (D006 has no row) = 55; control: H 30 + E 5 = 35
    assert (o["n_treated"], o["n_control"], o["small_n"]) == (55, 35, False)
    m = o["metrics"]
    assert m["open_rate"]["treated"]["successes"] == 20 + 5 + 1
    assert m["open_rate"]["diff"] == pytest.approx(26 / 55 - 10 / 35, abs=1e-6)
    assert m["click_rate"]["diff"] == pytest.approx(9 / 55 - 3 / 35, abs=1e-6)
    assert m["purchase_rate"]["rel_lift"] == pytest.approx((4 / 55) / (1 / 35) - 1, abs=1e-6)
    assert m["revenue_per_member"]["diff"] == pytest.approx(200 / 55 - 40 / 35, abs=1e-6)

    t2 = tier(rep, "lift", 2)
    assert (t2["n_treated"], t2["n_control"], t2["small_n"]) == (40, 30, False)
    t3 = tier(rep, "lift", 3)
    assert (t3["n_treated"], t3["n_control"], t3["small_n"], t3["note"]) == (10, 5, True, "n too small")
    assert t3["metrics"]["open_rate"]["diff"] == pytest.approx(0.5 - 0.2, abs=1e-6)
    t1 = tier(rep, "lift", 1)  # no holdout at all in tier 1
    assert (t1["n_treated"], t1["n_control"], t1["small_n"]) == (5, 0, True)
    assert t1["metrics"]["open_rate"]["treated"]["rate"] == pytest.approx(0.2)
    assert t1["metrics"]["open_rate"]["diff"] is None and t1["metrics"]["open_rate"]["diff_ci"] is None
    b = seg(rep, "lift", "Browsers")
    assert (b["n_treated"], b["n_control"], b["small_n"]) == (15, 5, True)
    assert b["metrics"]["open_rate"]["diff"] == pytest.approx(6 / 15 - 1 / 5, abs=1e-6)
    # the invalid member's VIP / tier 4 are not groups
    assert rep["segments"] == ["Enthusiasts", "Browsers"] and rep["tiers"] == [1, 2, 3]


def test_health_by_hand(hand):
    _, _, rep = hand
    h = rep["health"]
    ov = h["overall"]
    assert ov["opt_out"]["count"] == 2 and ov["opt_out"]["n"] == 55          # A040 and D005
    assert ov["opt_out"]["rate"] == pytest.approx(2 / 55, abs=1e-6)
    assert ov["complaint"]["rate"] == pytest.approx(1 / 55, abs=1e-6)     # C001
    assert ov["opt_out"]["ci"] == pytest.approx(list(hand_wilson(2, 55)), abs=1e-6)
    # repair / fallback over approved + repaired + fallback = 40 + 10 + 6 = 56
    assert ov["messages"] == 56
    assert ov["repair_rate"] == pytest.approx(10 / 56, abs=1e-6)
    assert ov["fallback_rate"] == pytest.approx(6 / 56, abs=1e-6)
    assert (ov["review"], ov["rejected"]) == (2, 1)
    # cost and tokens per member sent (56 sent, whether or not an outcome row came back)
    assert h["members_sent"] == 56
    assert h["cost_per_member_usd"] == pytest.approx(0.112 / 56, abs=1e-6)
    assert h["tokens_per_member"] == pytest.approx(5600 / 56, abs=1e-6)
    assert h["control_opt_out"]["rate"] == 0.0
    t3 = tier(rep, "health", 3)
    assert t3["complaint"]["rate"] == pytest.approx(0.1, abs=1e-6) and t3["opt_out"]["rate"] == 0.0
    assert (t3["repair_rate"], t3["fallback_rate"], t3["rejected"]) == (1.0, 0.0, 1)
    t1 = tier(rep, "health", 1)
    assert t1["opt_out"]["rate"] == pytest.approx(1 / 5, abs=1e-6) and t1["fallback_rate"] == 1.0 and t1["review"] == 2
    e = seg(rep, "health", "Enthusiasts")
    assert e["opt_out"]["rate"] == pytest.approx(1 / 40, abs=1e-6) and e["repair_rate"] == 0.0
    b = seg(rep, "health", "Browsers")
    assert b["opt_out"]["rate"] == pytest.approx(1 / 15, abs=1e-6) and b["complaint"]["rate"] == pytest.approx(1 / 15, abs=1e-6)
    assert b["repair_rate"] == pytest.approx(10 / 16, abs=1e-6)


def test_join_bookkeeping(hand):
    _, _, rep = hand
    of = rep["outcomes_file"]
    assert of["rows"] == 40 + 30 + 10 + 5 + 5 + 3 + 2
    assert of["unknown_member_ids"] == 2 and of["unknown_examples"] == ["X1", "X2"]
    assert of["excluded_rows"] == 3
    assert of["missing_outcomes"] == {"treated": 1, "control": 0}
    mm = of["treated_mismatch"]
    assert mm["count"] == 1 and mm["csv_treated_run_holdout"] == 1 and mm["examples"] == ["H001"]
    assert rep["run"]["outcome_counts"]["holdout"] == 35


# ---------------------------------------------------------------- interval properties


@pytest.mark.parametrize("x1,n1,x0,n0", [(20, 40, 9, 30), (1, 50, 0, 40), (0, 30, 0, 30), (30, 30, 10, 30)])
def test_rate_intervals_contain_estimate_and_shrink(x1, n1, x0, n0):
    widths = []
    for k in (1, 4, 16):
        lo, hi = newcombe_diff(x1 * k, n1 * k, x0 * k, n0 * k)
        d = x1 / n1 - x0 / n0
        assert lo <= d <= hi and -1 <= lo and hi <= 1
        widths.append(hi - lo)
        wl, wh = wilson(x1 * k, n1 * k)
        assert wl <= x1 / n1 <= wh
    assert widths[0] > widths[1] > widths[2]


def test_welch_interval_contains_estimate_and_shrinks():
    widths = []
    for n in (30, 120, 480):
        w = welch_diff(5.0, 20.0, n, 3.0, 15.0, n)
        lo, hi = w["diff_ci"]
        assert lo < 2.0 < hi
        rlo, rhi = w["rel_lift_ci"]
        assert rlo < 5 / 3 - 1 < rhi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]


def test_report_intervals_contain_estimates(hand):
    _, _, rep = hand
    groups = [rep["lift"]["overall"]] + rep["lift"]["by_segment"] + rep["lift"]["by_tier"]
    for g in groups:
        for m in g["metrics"].values():
            if m["diff_ci"]:
                assert m["diff_ci"][0] - 1e-9 <= m["diff"] <= m["diff_ci"][1] + 1e-9
            if m["rel_lift_ci"]:
                assert m["rel_lift_ci"][0] - 1e-9 <= m["rel_lift"] <= m["rel_lift_ci"][1] + 1e-9


# ---------------------------------------------------------------- outputs and CLI


def test_cli_writes_json_and_html(hand, tmp_path):
    run, outcomes, rep = hand
    res = CliRunner().invoke(cli, ["report", str(run), "--outcomes", str(outcomes), "--json"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.stdout)
    assert printed["lift"]["overall"]["metrics"]["open_rate"]["diff"] == rep["lift"]["overall"]["metrics"][
        "open_rate"]["diff"]
    on_disk = json.loads((run / "report" / "report.json").read_text())
    assert on_disk == printed
    page = (run / "report" / "report.html").read_text()
    assert page.count("<svg") >= 12 and "n too small" in page
    # data text is escaped: the campaign id "hand-<made>" never appears raw
    assert "hand-<made>" not in page and "hand-&lt;made&gt;" in page
    out = tmp_path / "elsewhere"
    res = CliRunner().invoke(cli, ["report", str(run), "--outcomes", str(outcomes), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "report.json").is_file() and (out / "report.html").is_file()
    assert "unknown member ids 2" in res.stdout


def test_html_escapes_segment_names(hand, tmp_path):
    run, outcomes, _ = hand
    text = (run / "messages.jsonl").read_text().replace('"Browsers"', '"<script>alert(1)</script>"')
    (run / "messages.jsonl").write_text(text)
    rep = build_report(run, outcomes)
    page = write_report(rep, tmp_path / "r")["html"].read_text()
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _bad(tmp_path, text, name="outcomes.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("body,line,column,words", [
    ("A001,1,1,yes,0,0,0,0", 2, "column 4 (clicked)", "'yes' is not 0 or 1"),
    ("A001,1,1,0,0,0,0,0\nA002,1,1,0,0,12.5O,0,0", 3, "column 6 (revenue)", "'12.5O' is not a non-negative"),
    ("A001,1,1,0,0,-3,0,0", 2, "column 6 (revenue)", "not a non-negative number"),
    ("A001,1,1,0,0,0,,0", 2, "column 7 (opted_out)", "empty"),
    ("A001,1,1,0,0,0,0,0\nA002,1,0,0,0,0,0,0\nA001,0,0,0,0,0,0,0", 4, "column 1 (member_id)", "repeats line 2"),
    (",1,1,0,0,0,0,0", 2, "column 1 (member_id)", "empty member id"),
])
def test_bad_values_name_file_line_and_column(tmp_path, body, line, column, words):
    p = _bad(tmp_path, HEADER + "\n" + body + "\n")
    with pytest.raises(InputFileError) as ei:
        load_outcomes(p)
    msg = ei.value.render()
    assert f"{p}:{line}: " in msg and column in msg and words in msg


def test_missing_column_is_named(tmp_path):
    p = _bad(tmp_path, "member_id,treated,opened,clicked,revenue,opted_out,complained\nA001,1,1,0,0,0,0\n")
    with pytest.raises(InputFileError) as ei:
        load_outcomes(p)
    msg = ei.value.render()
    assert f"{p}:1: " in msg and "missing column(s) purchased" in msg


def test_bad_outcomes_through_cli(hand, tmp_path):
    run, _, _ = hand
    p = _bad(tmp_path, HEADER + "\nA001,1,1,0,0,0,0,0\nA002,1,1,0,maybe,0,0,0\n")
    res = CliRunner().invoke(cli, ["report", str(run), "--outcomes", str(p)])
    assert res.exit_code == 2
    assert f"error: {p}:3: column 5 (purchased): 'maybe' is not 0 or 1" in res.stderr
    assert "Traceback" not in res.output
    res = CliRunner().invoke(cli, ["report", str(run), "--outcomes", str(tmp_path / "nope.csv")])
    assert res.exit_code != 0


def test_unknown_ids_only_are_reported_not_fatal(hand, tmp_path):
    run, _, _ = hand
    p = _bad(tmp_path, HEADER + "\nQ1,1,1,0,0,0,0,0\nQ2,0,1,0,0,0,0,0\n")
    rep = build_report(run, p)
    assert rep["outcomes_file"]["unknown_member_ids"] == 2
    assert rep["lift"]["overall"]["n_treated"] == 0 and rep["lift"]["overall"]["small_n"]
    write_report(rep, tmp_path / "r")  # renders with empty arms


def test_not_a_run_folder(tmp_path):
    from contentgen.errors import NotARunError

    with pytest.raises(NotARunError, match="no manifest.json here"):
        build_report(tmp_path, tmp_path / "x.csv")


def test_outcomes_without_treated_column(hand, tmp_path):
    run, outcomes, full = hand
    lines = outcomes.read_text().splitlines()
    p = tmp_path / "no_treated.csv"
    p.write_text("\n".join(",".join(c for i, c in enumerate(row.split(",")) if i != 1) for row in lines) + "\n")
    rep = build_report(run, p)
    assert rep["outcomes_file"]["treated_mismatch"] is None
    assert rep["lift"] == full["lift"]


# ---------------------------------------------------------------- in Chromium


CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing (apt-get install -y chromium)")
def test_report_renders_in_chromium(hand, tmp_path):
    pytest.importorskip("playwright", reason="playwright is not installed (pip install -e '.[dev]')")
    import importlib.util

    spec = importlib.util.spec_from_file_location("report_screenshot",
                                                  Path(__file__).parent.parent / "scripts" / "report_screenshot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    run, outcomes, rep = hand
    html = write_report(rep, tmp_path / "r")["html"]
    info = mod.screenshot(html, tmp_path / "shot.png")
    assert (tmp_path / "shot.png").stat().st_size > 10_000
    # 8 lift panels (4 metrics x segment/tier), 4 health panels, outcome mix, outcome counts
    assert info["charts"] == 14
    assert "Open rate: treated − holdout (pp)" in info["chart_titles"]
    assert "Opt-out rate by tier" in info["chart_titles"]
    assert info["bars"] > 20 and info["whiskers"] > 10 and info["stacked"] > 0
    assert info["scroll_width"] <= 1280  # nothing wider than the 1280 viewport


# ---------------------------------------------------------------- end to end


def test_end_to_end_sample_data_run_and_report(tmp_path, fake_openai):
    """sample-data (400 members) -> run on the fake OpenAI server -> report on the sample outcomes."""
    from contentgen.models import SEGMENTS
    from contentgen.pipeline import RunOptions, run_campaign
    from contentgen.sample_data import write_sample_data
    from tests import responders

    paths = write_sample_data(tmp_path / "data", 400)
    fake_openai.responder = responders.copywriter
    res = run_campaign(paths["campaign"], RunOptions(out=tmp_path / "run", base_url=fake_openai.base_url,
                                                     api_key="k"))
    assert res.status == "complete"
    cli_res = CliRunner().invoke(cli, ["report", str(tmp_path / "run"), "--outcomes", str(paths["outcomes"]),
                                       "--json"])
    assert cli_res.exit_code == 0, cli_res.output
    rep = json.loads(cli_res.stdout)
    recs = [json.loads(x) for x in (tmp_path / "run" / "messages.jsonl").read_text().splitlines()]
    sent = sum(1 for r in recs if r["send"] and r["outcome"] in ("approved", "repaired", "fallback"))
    held = sum(1 for r in recs if r["outcome"] == "holdout")
    assert rep["health"]["members_sent"] == sent > 300 and held > 0
    of = rep["outcomes_file"]
    # the sample outcomes cover active valid members: every treated/holdout member has a row
    assert of["treated"] + of["missing_outcomes"]["treated"] == sent
    assert of["control"] + of["missing_outcomes"]["control"] == held
    assert of["unknown_member_ids"] == 0
    # sample-data writes outcomes paired with the run's own holdout: no 'treated' disagreement, no warning
    assert of["treated_mismatch"]["count"] == 0
    assert "disagrees" not in cli_res.stderr
    assert set(rep["segments"]) == set(SEGMENTS) and rep["tiers"] == [1, 2, 3]
    for section in ("lift", "health"):
        assert [g["segment"] for g in rep[section]["by_segment"]] == [s for s in SEGMENTS if s in rep["segments"]]
        assert [g["tier"] for g in rep[section]["by_tier"]] == [1, 2, 3]
    for g in rep["lift"]["by_segment"] + rep["lift"]["by_tier"] + [rep["lift"]["overall"]]:
        assert g["n_treated"] > 0
        for key in ("open_rate", "click_rate", "purchase_rate", "revenue_per_member"):
            m = g["metrics"][key]
            assert m["treated"]["n"] == g["n_treated"]
            if g["n_control"]:
                assert m["diff"] is not None
            if g["n_control"] >= 2:  # Welch needs two per arm; Newcombe one
                assert m["diff_ci"] is not None
            assert g["small_n"] == (g["n_treated"] < 30 or g["n_control"] < 30)
    for g in rep["health"]["by_segment"] + rep["health"]["by_tier"]:
        assert g["opt_out"]["rate"] is not None and g["complaint"]["rate"] is not None
        assert g["repair_rate"] is not None and g["fallback_rate"] is not None
    h = rep["health"]
    assert h["tokens_per_member"] > 0 and h["requests"] > 0
    page = (tmp_path / "run" / "report" / "report.html").read_text()
    for s in SEGMENTS:
        assert s in page
    # treated open rate is a real rate from the sample outcomes
    o = rep["lift"]["overall"]["metrics"]["open_rate"]["treated"]
    assert 0.1 < o["rate"] < 0.8


def test_the_terminal_summary_is_rounded_and_says_why_a_figure_is_missing(hand, tmp_path):
    import re

    run, outcomes, rep = hand
    res = CliRunner().invoke(cli, ["report", str(run), "--outcomes", str(outcomes)])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "None" not in out and not re.search(r"\d\.\d{3,}", out), out  # no raw floats
    m = rep["lift"]["overall"]["metrics"]["open_rate"]
    assert f"{m['treated']['rate'] * 100:.1f}%" in out and f"{m['diff'] * 100:+.1f} pts" in out
    # no holdout members: each figure says n/a and the summary says why
    import shutil

    solo = tmp_path / "solo"
    shutil.copytree(run, solo)
    lines = [json.loads(x) for x in (solo / "messages.jsonl").read_text().splitlines()]
    (solo / "messages.jsonl").write_text("".join(json.dumps({**r, "outcome": "suppressed", "send": False}
                                                            if r["outcome"] == "holdout" else r) + "\n"
                                                 for r in lines))
    out = CliRunner().invoke(cli, ["report", str(solo), "--outcomes", str(outcomes)]).stdout
    assert "no holdout members with outcomes" in out and "None" not in out and "n/a" in out
