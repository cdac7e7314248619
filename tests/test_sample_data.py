"""The sample data generator: valid rows, plausible distributions, deliberate bad rows, determinism."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from contentgen import sample_data
from contentgen.config import Campaign, load_campaign
from contentgen.models import EVIDENCE_SOURCES, SEGMENTS, Member, Offer, Product, Recommendation
from contentgen.sample_data import (
    BAD_KINDS,
    CATALOG_COLUMNS,
    INJECTION_TEXTS,
    MEMBER_COLUMNS,
    OUTCOME_COLUMNS,
    member_row_problems,
    write_sample_data,
)

N = 4000
SEND = dt.date(2026, 11, 24)
NAMES = {"members", "recommendations", "catalog", "offers", "suppression", "outcomes", "campaign"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    return write_sample_data(tmp_path_factory.mktemp("sample"), N, seed=7)


def read_members(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"member_id": str, "first_name": str, "stated_preferences": str})
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True, dtype={"member_id": str})


def clean(row: dict) -> dict:
    """NaN -> None, float ages -> int: what a loader would do before validating."""
    out = {}
    for k, v in row.items():
        if isinstance(v, float) and math.isnan(v):
            v = None
        if k in ("age", "last_engaged_hour") and v is not None:
            v = int(v)
        out[k] = v
    return out


def member_problems(df: pd.DataFrame) -> list[list[str]]:
    seen: set[str] = set()
    return [member_row_problems(clean(r), seen) for r in df.to_dict("records")]


def read_recs(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def read_catalog(path: Path) -> dict[str, Product]:
    cat = pd.read_csv(path, keep_default_na=False, dtype={"claims": str})
    out = {}
    for r in cat.to_dict("records"):
        r["claims"] = tuple(c for c in r["claims"].split(";") if c)
        p = Product.model_validate(r)
        out[p.product_id] = p
    return out


def digest(paths: dict[str, Path]) -> dict[str, str]:
    return {k: hashlib.sha256(p.read_bytes()).hexdigest() for k, p in paths.items()}


# ---------------------------------------------------------------- files and schemas


def test_writes_every_file(data):
    assert set(data) == NAMES
    for p in data.values():
        assert p.exists() and p.stat().st_size > 0
    assert data["members"].name == "members.csv"


def test_members_columns_and_good_rows_validate(data):
    df = read_members(data["members"])
    assert tuple(df.columns) == MEMBER_COLUMNS
    assert len(df) == N
    problems = member_problems(df)
    good = 0
    for row, probs in zip(df.to_dict("records"), problems):
        if probs:
            continue
        m = Member.model_validate(clean(row))
        assert m.member_id.startswith("M") and len(m.member_id) == 5
        assert m.email.endswith((".com", ".net", ".org")) and "@example." in m.email
        good += 1
    assert good >= N - 10


def test_bad_member_rows_each_kind_and_rare(data):
    df = read_members(data["members"])
    problems = member_problems(df)
    kinds = [k for probs in problems for k in probs]
    for kind in BAD_KINDS:
        assert kinds.count(kind) >= 1, kind
    assert sum(1 for p in problems if p) <= max(len(BAD_KINDS), N // 1000)
    assert (df["segment"] == sample_data.BAD_SEGMENT).sum() >= 1
    assert (df["opt_in_tier"] == sample_data.BAD_TIER).sum() >= 1
    assert (df["churn_risk"] > 1).sum() >= 1
    assert df["member_id"].isna().sum() >= 1
    dup = df["member_id"].dropna()
    assert dup.duplicated().sum() >= 1


def test_recommendations_line_per_member_in_order(data):
    df = read_members(data["members"])
    recs = read_recs(data["recommendations"])
    assert len(recs) == len(df)
    for line, mid in zip(recs, df["member_id"].tolist()):
        expected = None if isinstance(mid, float) else mid
        assert line["member_id"] == expected


def test_recommendations_validate_and_rank(data):
    catalog = read_catalog(data["catalog"])
    recs = read_recs(data["recommendations"])
    unknown_lines = 0
    sources: dict[str, int] = {}
    for line in recs:
        items = [Recommendation.model_validate(r) for r in line["recommendations"]]
        assert 4 <= len(items) <= 6
        scores = [r.score for r in items]
        assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
        ids = [r.product_id for r in items]
        assert len(set(ids)) == len(ids)
        if any(pid not in catalog for pid in ids):
            unknown_lines += 1
            assert sum(pid not in catalog for pid in ids) == 1
        for r in items:
            assert 1 <= len(r.evidence) <= 3
            for ev in r.evidence:
                assert ev.source in EVIDENCE_SOURCES and ev.detail
                sources[ev.source] = sources.get(ev.source, 0) + 1
    assert 1 <= unknown_lines <= max(1, N // 500)
    assert set(sources) == set(EVIDENCE_SOURCES)
    # browsing and predicted are common: the model sees every signal, the plan step filters by tier
    assert sources["browsing"] > sources["stated_preference"] and sources["predicted"] > sources["inventory"]


def test_recommendations_fit_segment(data):
    df = read_members(data["members"])
    catalog = read_catalog(data["catalog"])
    recs = read_recs(data["recommendations"])
    share: dict[str, list[float]] = {"Enthusiasts": [], "Gift Givers": []}
    for seg, line in zip(df["segment"], recs):
        if seg in share:
            cats = [catalog[r["product_id"]].category for r in line["recommendations"] if r["product_id"] in catalog]
            key = {"Enthusiasts": ("running", "outdoor"), "Gift Givers": ("gifts", "home", "beauty")}[seg]
            share[seg].append(sum(c in key for c in cats) / len(cats))
    assert sum(share["Enthusiasts"]) / len(share["Enthusiasts"]) > 0.55
    assert sum(share["Gift Givers"]) / len(share["Gift Givers"]) > 0.55


def test_stated_preference_evidence_only_for_members_with_preferences(data):
    df = read_members(data["members"])
    recs = read_recs(data["recommendations"])
    for prefs, line in zip(df["stated_preferences"], recs):
        if isinstance(prefs, float):  # blank
            for r in line["recommendations"]:
                assert all(ev["source"] != "stated_preference" for ev in r["evidence"])


def test_catalog(data):
    cat = pd.read_csv(data["catalog"], keep_default_na=False, dtype={"claims": str, "price": str})
    assert tuple(cat.columns) == CATALOG_COLUMNS
    products = read_catalog(data["catalog"])
    assert len(products) == 300 == len(cat)
    assert cat["name"].is_unique and cat["product_id"].is_unique
    assert set(cat["category"]) == {"running", "outdoor", "apparel", "home", "beauty", "gifts"}
    assert all(len(p.split(".")[1]) == 2 for p in cat["price"])
    oos = [p for p in products.values() if not p.in_stock]
    assert 0.02 <= len(oos) / 300 <= 0.16
    assert all(p.stock == 0 for p in oos)
    assert all(p.stock > 0 for p in products.values() if p.in_stock)
    assert any(2 <= p.stock <= 5 for p in products.values())
    assert 0.2 <= sum(not p.claims for p in products.values()) / 300 <= 0.7
    assert all(0.1 <= p.margin <= 0.6 for p in products.values())
    moisturizers = [p for p in products.values() if "SPF 30" in p.name]
    assert moisturizers and all("SPF 30" in p.claims for p in moisturizers)
    by_cat = cat.assign(price=cat["price"].astype(float)).groupby("category")["price"].median()
    assert by_cat["beauty"] < by_cat["outdoor"]


def test_offers(data):
    catalog = read_catalog(data["catalog"])
    offers = [Offer.model_validate_json(line) for line in data["offers"].read_text().splitlines()]
    assert 8 <= len(offers) <= 14
    assert len({o.offer_id for o in offers}) == len(offers)
    expired = [o for o in offers if o.valid_until < SEND]
    future = [o for o in offers if o.valid_from > SEND]
    valid = [o for o in offers if o.valid_on(SEND)]
    assert len(expired) >= 2 and len(future) >= 1 and len(valid) >= 5
    kinds = {o.kind for o in offers}
    assert kinds == {"percent_off", "points_multiplier", "free_shipping"}
    for o in offers:
        assert o.audience in {"all", "tier3", *SEGMENTS}
        if o.kind == "percent_off":
            assert 10 <= o.value <= 25 and (o.applies_to or o.applies_to_category)
        if o.kind == "points_multiplier":
            assert o.value in (2, 3) and o.applies_to_category
        if o.kind == "free_shipping":
            assert o.min_order == 50
        for pid in o.applies_to or ():
            assert pid in catalog and catalog[pid].in_stock
        if o.applies_to_category:
            assert o.applies_to_category in {p.category for p in catalog.values()}
    assert any(o.audience == "tier3" for o in valid)


def test_offers_follow_send_date(tmp_path):
    send = dt.date(2027, 3, 2)
    paths = write_sample_data(tmp_path, 60, send_date=send)
    offers = [Offer.model_validate_json(line) for line in paths["offers"].read_text().splitlines()]
    assert sum(o.valid_until < send for o in offers) >= 2 and any(o.valid_on(send) for o in offers)
    assert yaml.safe_load(paths["campaign"].read_text())["send_date"] == send


# ---------------------------------------------------------------- distributions


def test_segment_and_tier_shares(data):
    df = read_members(data["members"])
    seg = df["segment"].value_counts(normalize=True)
    assert set(SEGMENTS) <= set(seg.index)
    assert seg.idxmax() == "Routine Buyers"
    for s in SEGMENTS:
        assert 0.05 <= seg[s] <= 0.35, s
    tier = df["opt_in_tier"].value_counts(normalize=True)
    assert {1, 2, 3} <= set(tier.index)
    assert abs(tier[3] - 0.41) < 0.03 and abs(tier[1] - 0.35) < 0.03 and abs(tier[2] - 0.24) < 0.03


def test_churn_follows_segment(data):
    df = read_members(data["members"])
    df = df[df["churn_risk"].between(0, 1)]
    mean = df.groupby("segment")["churn_risk"].mean()
    assert mean["Lapsed VIPs"] > mean["New Members"] > mean["Enthusiasts"]
    lapsed = df.loc[df["segment"] == "Lapsed VIPs", "churn_risk"]
    assert lapsed.min() >= 0.6 and lapsed.max() <= 0.95
    assert mean["Enthusiasts"] < 0.2
    # three decimals in the file
    text = data["members"].read_text().splitlines()[1].split(",")
    assert len(text[4].split(".")[1]) == 3


def test_member_field_variety(data):
    df = read_members(data["members"])
    assert 0.02 <= df["first_name"].isna().mean() <= 0.07
    assert (df["status"] != "active").any()
    assert 0.94 <= (df["status"] == "active").mean() <= 0.99
    assert set(df["status"]) <= {"active", "unsubscribed", "suppressed", "bounced"}
    assert (df["age"] < 16).sum() >= 1 and df["age"].isna().any()
    assert df["age"].dropna().between(13, 100).all()
    assert set(df["locale"]) == {"en-US", "en-CA"} and (df["locale"] == "en-US").mean() > 0.8
    assert df["timezone"].str.match(r"^(America|Pacific)/[A-Za-z_]+$").all()
    assert {"America/Los_Angeles", "America/New_York", "America/Chicago", "America/Denver",
            "America/Toronto"} <= set(df["timezone"])
    how = df["last_engaged_hour"]
    assert how.isna().any() and how.dropna().between(0, 167).all()
    chans = df["channels"].str.split(";")
    assert chans.map(lambda c: set(c) <= {"email", "push", "sms", "inapp"} and len(c) >= 1).all()
    assert chans.map(lambda c: "email" in c).mean() > 0.95
    assert all(p in c for p, c in zip(df["preferred_channel"], chans))
    assert df["email"].is_unique
    prefs = df["stated_preferences"].dropna()
    assert 0.2 <= len(prefs) / len(df) <= 0.7


def test_injection_text_present(data):
    df = read_members(data["members"])
    prefs = df["stated_preferences"].dropna()
    injected = prefs[prefs.map(lambda s: s in INJECTION_TEXTS)]
    assert 1 <= len(injected) <= max(2, N * 0.004)
    # every injection sits on a good row: it is valid data a real feed would carry
    problems = member_problems(df)
    for i in injected.index:
        assert not problems[i]
        Member.model_validate(clean(df.loc[i].to_dict()))


def test_injection_from_fifty_members(tmp_path):
    df = read_members(write_sample_data(tmp_path, 50)["members"])
    assert df["stated_preferences"].dropna().map(lambda s: s in INJECTION_TEXTS).sum() >= 1


def test_suppression_list(data):
    ids = data["suppression"].read_text().splitlines()
    assert ids and all(i.startswith("M") and i.strip() == i for i in ids)
    assert ids == sorted(set(ids))
    df = read_members(data["members"])
    status = dict(zip(df["member_id"], df["status"]))
    assert any(status.get(i) == "active" for i in ids)
    assert any(status.get(i) not in (None, "active") for i in ids)


def test_outcomes(data):
    out = pd.read_csv(data["outcomes"], dtype={"member_id": str})
    assert tuple(out.columns) == OUTCOME_COLUMNS
    for col in ("treated", "opened", "clicked", "purchased", "opted_out", "complained"):
        assert set(out[col].unique()) <= {0, 1}
    assert (out["clicked"] <= out["opened"]).all()
    assert ((out["revenue"] > 0) == (out["purchased"] == 1)).all()
    assert 0.9 <= out["treated"].mean() <= 0.98
    rates = out.groupby("treated")[["opened", "clicked"]].mean()
    assert rates.loc[1, "opened"] > rates.loc[0, "opened"]
    assert rates.loc[1, "clicked"] > rates.loc[0, "clicked"]
    members = read_members(data["members"])
    assert set(out["member_id"]) <= set(members["member_id"].dropna())


def test_outcomes_tier3_opt_out_lower():
    # the outcome model itself, on many synthetic rows (cheap: no files)
    import numpy as np

    rng = np.random.default_rng(3)
    n = 300_000
    tier = rng.integers(1, 4, n)
    out = sample_data._outcomes(rng, np.arange(n).astype(str).astype(object), rng.integers(0, 7, n), tier,
                                rng.random(n))
    treated = out["treated"] == 1
    rate = {t: out["opted_out"][treated & (tier == t)].mean() for t in (1, 2, 3)}
    assert rate[3] < rate[2] < rate[1]
    assert out["opened"][treated].mean() > out["opened"][~treated].mean() + 0.1


def test_campaign_file(data):
    text = data["campaign"].read_text()
    assert text.startswith("#")
    raw = yaml.safe_load(text)
    campaign = Campaign.model_validate(raw)
    assert campaign.campaign_id == "athena-weekly-2026-11-24"
    assert campaign.top_k == 3 and campaign.holdout_share == 0.05 and campaign.max_repairs == 2
    assert raw["inputs"] == {"members": "members.csv", "recommendations": "recommendations.jsonl",
                             "catalog": "catalog.csv", "offers": "offers.jsonl", "suppression": ["suppression.txt"]}
    loaded = load_campaign(data["campaign"])
    assert loaded.inputs.members == data["members"].resolve()


# ---------------------------------------------------------------- formats, determinism, switches


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_other_member_formats(tmp_path, data, fmt):
    paths = write_sample_data(tmp_path, N, fmt=fmt)
    assert paths["members"].name == f"members.{fmt}"
    df = read_members(paths["members"])
    ref = read_members(data["members"])
    assert tuple(df.columns) == MEMBER_COLUMNS and len(df) == N
    assert df["member_id"].fillna("").tolist() == ref["member_id"].fillna("").tolist()
    assert df["segment"].tolist() == ref["segment"].tolist()
    assert df["churn_risk"].round(3).tolist() == ref["churn_risk"].tolist()
    assert df["timezone"].tolist() == ref["timezone"].tolist()
    assert yaml.safe_load(paths["campaign"].read_text())["inputs"]["members"] == f"members.{fmt}"
    # the other files do not depend on the members format
    assert paths["recommendations"].read_bytes() == data["recommendations"].read_bytes()
    problems = member_problems(df)
    for row, probs in zip(df.to_dict("records"), problems):
        if not probs:
            Member.model_validate(clean(row))
    if fmt == "jsonl":
        assert "\\/" not in paths["members"].read_text()


def test_deterministic(tmp_path):
    a = write_sample_data(tmp_path / "a", 700, seed=11)
    b = write_sample_data(tmp_path / "b", 700, seed=11)
    c = write_sample_data(tmp_path / "c", 700, seed=12)
    da, db, dc = digest(a), digest(b), digest(c)
    assert da == db
    for name in ("members", "recommendations", "catalog", "outcomes"):
        assert da[name] != dc[name], name


def test_no_bad_rows_when_disabled(tmp_path):
    paths = write_sample_data(tmp_path, 3000, bad_rows=False)
    df = read_members(paths["members"])
    assert not any(member_problems(df))
    catalog = read_catalog(paths["catalog"])
    for line in read_recs(paths["recommendations"]):
        assert all(r["product_id"] in catalog for r in line["recommendations"])
    assert df["stated_preferences"].dropna().map(lambda s: s in INJECTION_TEXTS).any()


def test_many_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(sample_data, "CHUNK", 333)
    paths = write_sample_data(tmp_path, 2500)
    df = read_members(paths["members"])
    recs = read_recs(paths["recommendations"])
    assert len(df) == len(recs) == 2500
    problems = member_problems(df)
    assert sum(1 for p in problems if p) == len(BAD_KINDS)
    ids = [r["member_id"] for r in recs]
    assert ids == [None if isinstance(m, float) else m for m in df["member_id"]]
    good = df["member_id"][[not p for p in problems]]
    assert good.is_unique


def test_tiny_and_invalid_arguments(tmp_path):
    paths = write_sample_data(tmp_path, 1)
    df = read_members(paths["members"])
    assert len(df) == 1 and df["member_id"][0] == "M0001"
    assert len(read_recs(paths["recommendations"])) == 1
    with pytest.raises(ValueError):
        write_sample_data(tmp_path, 10, fmt="xlsx")
    with pytest.raises(ValueError):
        write_sample_data(tmp_path, 0)


def test_member_ids_fit_n():
    assert sample_data._width(2_300_000) == 7 and sample_data._width(12_345) == 5
    assert sample_data._width(50) == 4
