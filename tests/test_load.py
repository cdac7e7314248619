"""Input validation: every bad row is quarantined with file, line, field and reason; the rest go on."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from contentgen.config import load_campaign
from contentgen.errors import ConfigError, InputFileError
from contentgen.load import iter_members, load_catalog, load_offers
from contentgen.models import Product

HEADER = "member_id,first_name,email,segment,churn_risk,opt_in_tier,status,age\n"
GOOD = "M1,Nia,nia@example.com,Enthusiasts,0.2,2,active,34\n"
CATALOG = {"P1": Product(product_id="P1", name="Socks", category="running", price=14.0)}


def write(tmp: Path, members: str, recs: list[dict] | None = None) -> tuple[Path, Path]:
    m = tmp / "members.csv"
    m.write_text(members, encoding="utf-8")
    r = tmp / "recs.jsonl"
    r.write_text("".join(json.dumps(x) + "\n" for x in (recs or [])), encoding="utf-8")
    return m, r


@pytest.mark.parametrize("row,field,reason", [
    ("M2,Ana,a@example.com,,0.2,2,active,30\n", "segment", "required value is missing"),
    ("M2,Ana,a@example.com,VIP,0.2,2,active,30\n", "segment", "Input should be"),
    ("M2,Ana,a@example.com,Enthusiasts,0.2,4,active,30\n", "opt_in_tier", "Input should be 1, 2 or 3"),
    ("M2,Ana,a@example.com,Enthusiasts,1.7,2,active,30\n", "churn_risk", "less than or equal to 1 (got '1.7')"),
    ("M2,Ana,a@example.com,Enthusiasts,high,2,active,30\n", "churn_risk", "a valid number, unable to parse string "
                                                                         "as a number (got 'high')"),
    ("M2,Ana,a@example.com,Enthusiasts,0.2,2,asleep,30\n", "status", "(got 'asleep')"),
    ("M1,Dup,d@example.com,Enthusiasts,0.2,2,active,30\n", "member_id", "duplicate member id M1"),
    (",Ana,a@example.com,Enthusiasts,0.2,2,active,30\n", "member_id", "required value is missing"),
    ("M2,Ana,a@example.com,Enthusiasts,0.2,2,active,30,extra\n", "(row)", "a column is shifted"),
], ids=["missing-value", "unknown-segment", "tier-4", "churn-out-of-range", "churn-not-a-number", "bad-status",
        "duplicate-id", "missing-id", "shifted-column"])
def test_bad_member_row_is_quarantined_and_the_rest_goes_on(tmp_path, row, field, reason):
    m, r = write(tmp_path, HEADER + GOOD + row + "M3,Bo,b@example.com,Browsers,0.5,3,active,40\n")
    rows = list(iter_members(m, r, CATALOG))
    assert [x.member.member_id if x.member else None for x in rows] == ["M1", None, "M3"]
    bad = rows[1].quarantined[0]
    assert bad.file == str(m) and bad.line == 3 and bad.field == field
    assert reason in bad.reason


def test_unknown_product_in_recommendations(tmp_path):
    recs = [{"member_id": "M1", "recommendations": [
        {"product_id": "P1", "score": 0.9, "evidence": [{"source": "purchase", "detail": "bought socks"}]},
        {"product_id": "P999", "score": 0.8, "evidence": []}]}]
    m, r = write(tmp_path, HEADER + GOOD, recs)
    (row,) = list(iter_members(m, r, CATALOG))
    assert row.member is not None and [x.product_id for x in row.recommendations] == ["P1"]
    q = row.quarantined[0]
    assert (q.file, q.line, q.field, q.kind) == (str(r), 1, "recommendations[1].product_id", "recommendation")
    assert "unknown product 'P999'" in q.reason


def test_recommendations_out_of_order_are_matched(tmp_path):
    recs = [{"member_id": "M3", "recommendations": [{"product_id": "P1"}]},
            {"member_id": "M1", "recommendations": [{"product_id": "P1", "score": 0.5}]}]
    m, r = write(tmp_path, HEADER + GOOD + "M3,Bo,b@example.com,Browsers,0.5,3,active,40\n", recs)
    rows = list(iter_members(m, r, CATALOG))
    assert [len(x.recommendations) for x in rows] == [1, 1]


def test_invalid_utf8_row_is_quarantined(tmp_path):
    m = tmp_path / "members.csv"
    m.write_bytes((HEADER + GOOD).encode() + b"M2,Ana\xff\xfe,a@example.com,Enthusiasts,0.2,2,active,30\n")
    r = tmp_path / "recs.jsonl"
    r.write_text("")
    rows = list(iter_members(m, r, CATALOG))
    assert rows[0].member is not None and rows[1].member is None
    assert "not valid UTF-8" in rows[1].quarantined[0].reason


def test_missing_required_column_is_a_file_error(tmp_path):
    m, r = write(tmp_path, "member_id,first_name,segment,churn_risk\nM1,Nia,Enthusiasts,0.2\n")
    with pytest.raises(InputFileError) as e:
        list(iter_members(m, r, CATALOG))
    assert "missing column(s) opt_in_tier" in str(e.value) and str(m) in str(e.value)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_parquet_and_jsonl_members(tmp_path, fmt):
    df = pd.DataFrame([{"member_id": "M1", "first_name": "Nia", "segment": "Enthusiasts", "churn_risk": 0.2,
                        "opt_in_tier": 2},
                       {"member_id": "M2", "first_name": None, "segment": "Nope", "churn_risk": 0.2,
                        "opt_in_tier": 1}])
    path = tmp_path / f"members.{fmt}"
    if fmt == "parquet":
        df.to_parquet(path)
    else:
        df.to_json(path, orient="records", lines=True)
    r = tmp_path / "recs.jsonl"
    r.write_text("")
    rows = list(iter_members(path, r, CATALOG))
    assert rows[0].member.first_name == "Nia"
    assert rows[1].member is None and rows[1].quarantined[0].line == 2
    assert rows[1].quarantined[0].field == "segment"


def test_catalog_and_offers_quarantine(tmp_path):
    c = tmp_path / "catalog.csv"
    c.write_text("product_id,name,category,price,in_stock,claims\nP1,Socks,running,14,true,a;b\n"
                 "P2,Vest,running,-3,true,\nP1,Again,running,5,true,\n")
    catalog, bad = load_catalog(c)
    assert list(catalog) == ["P1"] and catalog["P1"].claims == ("a", "b")
    assert [(b.line, b.field) for b in bad] == [(3, "price"), (4, "product_id")]
    o = tmp_path / "offers.jsonl"
    o.write_text('{"offer_id":"O1","kind":"percent_off","value":10,"valid_from":"2026-11-01",'
                 '"valid_until":"2026-11-30"}\n{"offer_id":"O2","kind":"bogus","valid_from":"2026-11-01",'
                 '"valid_until":"2026-11-30"}\nnot json\n')
    offers, bad = load_offers(o)
    assert [x.offer_id for x in offers] == ["O1"]
    assert [(b.line, b.field) for b in bad] == [(2, "kind"), (3, "(row)")]


def _campaign(tmp: Path, text: str) -> Path:
    for name in ("members.csv", "recs.jsonl", "catalog.csv", "offers.jsonl"):
        (tmp / name).write_text("")
    p = tmp / "campaign.yaml"
    p.write_text(text)
    return p


GOOD_CAMPAIGN = """campaign_id: c1
send_date: 2026-11-24
inputs: {members: members.csv, recommendations: recs.jsonl, catalog: catalog.csv, offers: offers.jsonl}
"""


@pytest.mark.parametrize("text,key,fix", [
    (GOOD_CAMPAIGN.replace("send_date: 2026-11-24", "send_date: next tuesday"), "send_date", "YYYY-MM-DD"),
    (GOOD_CAMPAIGN + "holdout_shar: 0.1\n", "holdout_shar", "rename 'holdout_shar' to 'holdout_share'"),
    (GOOD_CAMPAIGN + "colour: blue\n", "colour", "remove it or check its spelling; keys here: campaign_id"),
    (GOOD_CAMPAIGN.replace("campaign_id: c1\n", ""), "campaign_id", "add this key"),
    (GOOD_CAMPAIGN + "holdout_share: 2\n", "holdout_share", "correct the value"),
    (GOOD_CAMPAIGN.replace("members.csv", "nope.csv"), "inputs.members", "existing CSV"),
    ("campaign_id: [unclosed\n", None, "fix the YAML syntax"),
], ids=["bad-date", "typo-key", "unknown-key", "missing-key", "out-of-range", "missing-file", "bad-yaml"])
def test_bad_campaign_file_names_file_key_and_fix(tmp_path, text, key, fix):
    p = _campaign(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_campaign(p)
    msg = e.value.render()
    assert str(p) in msg and fix in msg
    if key:
        assert f"(key: {key})" in msg


def test_good_campaign_resolves_paths(tmp_path):
    c = load_campaign(_campaign(tmp_path, GOOD_CAMPAIGN))
    assert c.inputs.members == tmp_path.resolve() / "members.csv"
    assert (c.prompts_dir / "system.j2").exists()


def test_a_misspelled_nested_key_is_a_typo_with_its_line_not_a_missing_key(tmp_path):
    text = GOOD_CAMPAIGN.replace("inputs: {members: members.csv, recommendations: recs.jsonl, catalog: catalog.csv, "
                                 "offers: offers.jsonl}",
                                 "inputs:\n  members: members.csv\n  recommendations: recs.jsonl\n"
                                 "  catalogue: catalog.csv\n  offers: offers.jsonl\n") + "top_kk: 3\n"
    p = _campaign(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_campaign(p)
    msg = e.value.render()
    assert msg.startswith(f"{p}:6: unknown key 'catalogue'; did you mean 'catalog'?")
    assert "(key: inputs.catalogue)" in msg and "fix: rename 'catalogue' to 'catalog'" in msg
    assert "top_kk (line 9): unknown key 'top_kk'; did you mean 'top_k'?" in msg
    assert "missing" not in msg  # the typo explains the 'missing' inputs.catalog: one problem, not two
    assert e.value.exit_code == 2


@pytest.mark.parametrize("text,line,needle", [
    ("llm: {modle: gpt-4o-mini}\n", 4, "unknown key 'modle'; did you mean 'model'?"),
    ("selection: {max_per_categroy: 2}\n", 4, "did you mean 'max_per_category'?"),
    ("variants:\n  - {name: a, weight: 1, templat: message.j2}\n", 5, "did you mean 'template'?"),
    ("tracking: {utm_campaing: x}\n", 4, "did you mean 'utm_campaign'?"),
    ("tracking: {utm_content: '{varient}'}\n", 4, "unknown placeholder"),
], ids=["llm", "selection", "variant-in-a-list", "tracking", "tracking-placeholder"])
def test_did_you_mean_in_every_section(tmp_path, text, line, needle):
    p = _campaign(tmp_path, GOOD_CAMPAIGN + text)
    with pytest.raises(ConfigError) as e:
        load_campaign(p)
    assert needle in e.value.render() and f"{p}:{line}:" in e.value.render()
