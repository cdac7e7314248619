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


# ----------------------------------------------------------------------------- hostile rows (issue: poison rows)

def _members(tmp: Path, text: str | bytes) -> tuple[Path, Path]:
    m = tmp / "members.csv"
    if isinstance(text, str):
        text = text.encode("utf-8")
    m.write_bytes(text)
    r = tmp / "recs.jsonl"
    r.write_text("")
    return m, r


def _outcome(rows) -> list[tuple[str | None, str | None]]:
    """(member id, quarantined field) per yielded row, in order."""
    return [(x.member.member_id if x.member else None, x.quarantined[0].field if x.quarantined else None)
            for x in rows]


def test_a_field_over_the_limit_quarantines_its_row_with_file_line_and_field(tmp_path):
    big = "x" * 1_000_000  # 1 MB: Python's csv module stops at 131,072 by default
    m, r = _members(tmp_path, HEADER + GOOD + f"M2,Ana,a@example.com,Enthusiasts,0.2,2,active,30\n".replace(
        "Ana", big) + f'M3,"{big}",b@example.com,Browsers,0.5,3,active,40\n' + "M4,Bo,c@example.com,Browsers,0.5,3,active,40\n")
    rows = list(iter_members(m, r, CATALOG))
    assert _outcome(rows) == [("M1", None), (None, "first_name"), (None, "first_name"), ("M4", None)]
    q = rows[1].quarantined[0]
    assert (q.file, q.line) == (str(m), 3) and rows[2].quarantined[0].line == 4
    assert "longer than 100,000 characters" in q.reason and "inputs.max_field_chars" in q.reason


@pytest.mark.parametrize("size", [110_000, 150_000], ids=["under-csv-default", "over-csv-default"])
def test_the_field_limit_is_configured(tmp_path, size):
    mid = "y" * size
    m, r = _members(tmp_path, HEADER.replace("\n", ",stated_preferences\n") + GOOD.replace("\n", ",\n")
                    + f"M2,Ana,a@example.com,Enthusiasts,0.2,2,active,30,{mid}\n")
    # the default (100,000) quarantines the value; a campaign can raise the limit
    assert _outcome(iter_members(m, r, CATALOG)) == [("M1", None), (None, "stated_preferences")]
    rows = list(iter_members(m, r, CATALOG, max_field_chars=200_000))
    assert _outcome(rows) == [("M1", None), ("M2", None)] and rows[1].member.stated_preferences == mid
    import csv

    assert csv.field_size_limit() >= 131_072  # the process-wide limit is never lowered for other readers


def test_an_unclosed_quote_loses_one_row_not_the_rest_of_the_file(tmp_path):
    m, r = _members(tmp_path, HEADER + GOOD + 'M2,"Ana,a@example.com,Enthusiasts,0.2,2,active,30\n'
                    + "M3,Bo,b@example.com,Browsers,0.5,3,active,40\n" + "M4,Cy,c@example.com,Browsers,0.5,3,active,40\n")
    rows = list(iter_members(m, r, CATALOG))
    assert [x.member.member_id if x.member else None for x in rows] == ["M1", None, "M3", "M4"]
    q = rows[1].quarantined[0]
    assert q.line == 3 and q.field == "first_name" and "runs on to line 5" in q.reason


def test_a_quote_that_swallows_rows_up_to_a_later_quote_loses_one_row(tmp_path):
    m, r = _members(tmp_path, HEADER + GOOD + 'M2,"Ana,a@example.com,Enthusiasts,0.2,2,active,30\n'
                    + "M3,Bo,b@example.com,Browsers,0.5,3,active,40\n"
                    + 'M4,"Cy",c@example.com,Browsers,0.5,3,active,40\n')
    rows = list(iter_members(m, r, CATALOG))
    assert [x.member.member_id if x.member else None for x in rows] == ["M1", None, "M3", "M4"]
    assert rows[1].quarantined[0].line == 3 and "runs on to line 5" in rows[1].quarantined[0].reason
    assert [x.line for x in rows] == [2, 3, 4, 5]


def test_an_oversized_quoted_value_spanning_lines_is_one_quarantined_row(tmp_path):
    big = ("z" * 60_000 + "\n") * 3
    m, r = _members(tmp_path, HEADER + GOOD + f'M2,"{big}",a@example.com,Enthusiasts,0.2,2,active,30\n'
                    + "M3,Bo,b@example.com,Browsers,0.5,3,active,40\n")
    rows = list(iter_members(m, r, CATALOG))
    assert _outcome(rows) == [("M1", None), (None, "first_name"), ("M3", None)]
    assert rows[2].line == 7


@pytest.mark.parametrize("raw", [b"M2,Ann\rX,a@example.com,Enthusiasts,0.2,2,active,30\n",
                                 b"M2,Jo\x00e,a@example.com,Enthusiasts,0.2,2,active,30\n"],
                         ids=["lone-CR", "NUL"])
def test_control_characters_in_a_row_never_stop_the_file(tmp_path, raw):
    m, r = _members(tmp_path, (HEADER + GOOD).encode() + raw + b"M3,Bo,b@example.com,Browsers,0.5,3,active,40\n")
    rows = list(iter_members(m, r, CATALOG))
    assert rows[0].member.member_id == "M1" and rows[-1].member.member_id == "M3"
    for x in rows:
        if x.member:
            assert "\x00" not in x.member.first_name and "\r" not in x.member.first_name


def test_an_oversized_jsonl_value_is_quarantined(tmp_path):
    m = tmp_path / "members.jsonl"
    m.write_text(json.dumps({"member_id": "M1", "segment": "Browsers", "churn_risk": 0.1, "opt_in_tier": 2,
                             "stated_preferences": "p" * 200_000}) + "\n" +
                 json.dumps({"member_id": "M2", "segment": "Browsers", "churn_risk": 0.1, "opt_in_tier": 2}) + "\n")
    r = tmp_path / "recs.jsonl"
    r.write_text("")
    assert _outcome(iter_members(m, r, CATALOG)) == [(None, "stated_preferences"), ("M2", None)]


@pytest.mark.parametrize("raw,name,why", [
    ("MARIA", "Maria", None),
    ("\u202eNia\u200b", "Nia", None),
    ('"Ann\r\nX-Injected: yes"', "", "is not part of a name"),
    ("Jo\\1", "", "is not part of a name"),
    ("=HYPERLINK(1)", "", "is not part of a name"),
], ids=["all-caps", "bidi-zero-width", "header-injection", "backreference", "formula"])
def test_first_names_are_normalized_at_load(tmp_path, raw, name, why):
    m, r = _members(tmp_path, HEADER + f"M1,{raw},nia@example.com,Enthusiasts,0.2,2,active,34\n")
    (row,) = list(iter_members(m, r, CATALOG))
    assert row.member is not None and row.member.first_name == name
    notes = [q for q in row.quarantined if q.field == "first_name"]
    if why is None:
        assert not notes
    else:
        (q,) = notes
        assert q.kind == "name" and q.line == 2 and why in q.reason and "Hi there" in q.reason


def test_a_member_id_with_control_characters_is_quarantined(tmp_path):
    m, r = _members(tmp_path, HEADER + '"M\r\n1",Nia,n@example.com,Enthusiasts,0.2,2,active,34\n' + GOOD)
    rows = list(iter_members(m, r, CATALOG))
    assert _outcome(rows) == [(None, "member_id"), ("M1", None)]
    assert "\n" not in (rows[0].quarantined[0].member_id or "")


def test_a_quote_never_closed_before_the_end_of_a_long_file_loses_one_row(tmp_path):
    rest = "".join(f"M{i},Bo,b{i}@example.com,Browsers,0.5,3,active,40\n" for i in range(3, 4003))  # ~190k chars
    m, r = _members(tmp_path, HEADER + GOOD + 'M2,"Ana,a@example.com,Enthusiasts,0.2,2,active,30\n' + rest)
    rows = list(iter_members(m, r, CATALOG))
    assert len(rows) == 4002 and rows[1].member is None and "never closed" in rows[1].quarantined[0].reason
    assert [x.member.member_id for x in rows[2:4]] == ["M3", "M4"] and rows[-1].member.member_id == "M4002"
    assert rows[-1].line == 4003
