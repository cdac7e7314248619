"""facts.claims beyond the claim vocabulary (compliance-policy.md §3: product claims only as the
catalog lists them): numbers with a unit or counted noun against the catalog's numbers, material and
component swaps, features, universal-fit and absolute-capability claims; and what is no claim: a
material the catalog states in a product's name or category, the member's own purchases, what the
member makes with a kit. Own phrasings and products, not the labelled sets'."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from contentgen.check import check_case
from contentgen.errors import RuleFileError
from contentgen.gates import load_rules
from tests.util import CASE_FOOTER

REPO = Path(__file__).resolve().parents[1]
RULES = load_rules()
FOOTER = CASE_FOOTER

CATALOG = [
    {"product_id": "A1", "name": "Ridge Trekking Pole", "category": "trekking poles", "price": 89.0, "in_stock": True,
     "claims": ["weighs 240 g", "carbon fiber shaft"]},
    {"product_id": "A2", "name": "Puzzle Chest, 14 Moves", "category": "puzzle boxes", "price": 48.0, "in_stock": True,
     "claims": ["oiled maple wood"]},
    {"product_id": "A3", "name": "Lark Studio Microphone", "category": "home recording", "price": 99.0, "in_stock": True,
     "claims": ["XLR output"]},
    {"product_id": "A4", "name": "Junior Weaving Loom", "category": "craft kits", "price": 25.0, "in_stock": True,
     "claims": ["ages 8+", "includes 4 shuttles"]},
    {"product_id": "A5", "name": "Griddle Scraper", "category": "carbon-steel cookware", "price": 12.0, "in_stock": True,
     "claims": ["stainless steel"]},
    {"product_id": "A6", "name": "Dune Thermos", "category": "bottles", "price": 30.0, "in_stock": True,
     "claims": ["no assembly needed"]},
]


def _case(body: str, rec: str = "A1", explanation: str = "We recommended this because: (1) You bought trail gear from us.") -> dict:
    return {
        "case_id": "t", "send_date": "2026-11-24",
        "member": {"member_id": "M1", "first_name": "Ola", "segment": "Enthusiasts", "churn_risk": 0.1,
                   "opt_in_tier": 2, "locale": "en-US"},
        "recommendations": [{"product_id": rec, "evidence": [{"source": "purchase", "detail": "bought trail gear"}]}],
        "offers": [], "catalog": copy.deepcopy(CATALOG),
        "message": {"subject": "Something for your next outing", "preheader": "A pick we think you'll like.",
                    "body": f"Hi Ola,\n\n{body}\n\n— The AthenaPlus team", "cta_text": "Take a look",
                    "cta_url": "https://athenaplus.example/p/x",
                    "explanations": [{"product_id": rec, "text": explanation}], "footer": FOOTER},
    }


def _claims(body: str, rec: str = "A1", **kw: str) -> list[str]:
    _, findings = check_case(_case(body, rec, **kw), RULES)
    return [f.excerpt for f in findings if f.rule_id == "facts.claims"]


@pytest.mark.parametrize("body,rec,excerpt", [
    # numbers with a unit: converted within a dimension (0.31 kg is 310 g)
    ("The Ridge Trekking Pole weighs just 310 g.", "A1", "310 g"),
    ("The Ridge Trekking Pole weighs just 0.31 kg.", "A1", "0.31 kg"),
    # ages and counted nouns
    ("The Junior Weaving Loom suits ages 5 and up.", "A4", "ages 5"),
    ("The Junior Weaving Loom comes with 6 shuttles.", "A4", "6 shuttles"),
    ("The Junior Weaving Loom comes with two shuttles.", "A4", "two shuttles"),
    # a number in the name is the catalog's too
    ("The Puzzle Chest opens in 20 moves.", "A2", "20 moves"),
    # material and component swaps
    ("The Puzzle Chest, 14 Moves is finished in oiled walnut.", "A2", "walnut"),
    ("The Lark Studio Microphone has a USB-C output for your laptop.", "A3", "USB-C"),
    # features, universal fit, absolute capability
    ("The Lark Studio Microphone has Bluetooth pairing.", "A3", "Bluetooth"),
    ("The Ridge Trekking Pole fits every pack strap.", "A1", "fits every pack"),
    ("The Ridge Trekking Pole never needs tightening.", "A1", "never needs tightening"),
    ("The Ridge Trekking Pole needs no tools to adjust.", "A1", "needs no tools"),
    ("The Dune Thermos keeps coffee hot for days.", "A6", "keeps coffee hot for days"),
    ("The Dune Thermos is fully dishwashable.", "A6", "fully dishwashable"),
    ("The Dune Thermos comes pre-seasoned.", "A6", "pre-seasoned"),
])
def test_unbacked_or_contradicting_claims_are_found(body, rec, excerpt):
    assert excerpt in _claims(body, rec)


@pytest.mark.parametrize("body,rec,kw", [
    # the catalog's own numbers, in other units or words
    ("The Ridge Trekking Pole weighs just 240 g.", "A1", {}),
    ("The Ridge Trekking Pole weighs just 0.24 kg.", "A1", {}),
    ("The Junior Weaving Loom suits ages 8 and up and comes with four shuttles.", "A4", {}),
    # numbers of something else, or not compared
    ("The Junior Weaving Loom is $25, and it's a good start for more than two projects.", "A4", {}),
    # the catalog's material and the category's
    ("The Puzzle Chest, 14 Moves is oiled maple.", "A2", {}),
    ("The Griddle Scraper is stainless steel, made for carbon steel pans.", "A5", {}),
    # the member's own things
    ("The Puzzle Chest, 14 Moves is oiled maple, a match for your walnut desk.", "A2", {}),
    ("The Lark Studio Microphone has an XLR output.", "A3",
     {"explanation": "We recommended this because: (1) You bought a USB interface from us."}),
    # what the member makes with a kit is not said of the kit
    ("The Junior Weaving Loom makes a lovely handmade gift.", "A4", {}),
    # the catalog's claim in other words ("no assembly needed")
    ("The Dune Thermos needs no assembly.", "A6", {}),
    # a proper name is no material
    ("The Ridge Trekking Pole is ready for the trails around Maple Lake.", "A1", {}),
])
def test_catalog_backed_or_not_product_claims_pass(body, rec, kw):
    assert _claims(body, rec, **kw) == []


def _pack(tmp_path: Path) -> Path:
    d = tmp_path / "pack"
    for sub in ("brand_rules", "compliance"):
        shutil.copytree(REPO / sub, d / sub)
    return d


def test_an_edited_data_file_is_read_again(tmp_path):
    """The vocab/*.yaml data files are part of what the rule set is: editing one reloads the rules."""
    pack = _pack(tmp_path)
    dirs = [pack / "brand_rules", pack / "compliance"]
    case = _case("The Puzzle Chest, 14 Moves is finished in oiled walnut.", "A2")
    assert "walnut" in [f.excerpt for f in check_case(case, load_rules(dirs))[1] if f.rule_id == "facts.claims"]
    mats = pack / "compliance" / "vocab" / "claim-materials.yaml"
    mats.write_text(mats.read_text(encoding="utf-8").replace("walnut, ", "", 1), encoding="utf-8")
    assert "walnut" not in [f.excerpt for f in check_case(case, load_rules(dirs))[1] if f.rule_id == "facts.claims"]


def test_a_missing_data_file_is_a_one_line_rule_error(tmp_path):
    pack = _pack(tmp_path)
    (pack / "compliance" / "vocab" / "claim-units.yaml").unlink()
    with pytest.raises(RuleFileError) as e:
        load_rules([pack / "brand_rules", pack / "compliance"])
    text = str(e.value)
    assert "facts.yaml" in text and "claim-units.yaml" in text and "vocab/" in text and "Traceback" not in text


@pytest.mark.parametrize("body,rec,excerpt", [
    ("The Junior Weaving Loom is made for kids 4 and up.", "A4", "kids 4"),
    ("The Ridge Trekking Pole works with all pole tips.", "A1", "works with all pole"),
])
def test_more_phrasings_of_the_same_kinds(body, rec, excerpt):
    assert excerpt in _claims(body, rec)


@pytest.mark.parametrize("body", [
    "The Ridge Trekking Pole is a gift that fits any budget.",
    "The Ridge Trekking Pole works for any occasion, and it pairs with every outfit.",
])
def test_fitting_a_budget_or_an_occasion_is_no_compatibility_claim(body):
    assert _claims(body) == []


def test_a_model_number_in_a_name_is_no_count():
    """"Volt 120 Bottle" names a model; "2 bottles" doesn't contradict it (plural counts in names do)."""
    case = _case("Grab 2 bottles: the Volt 120 Bottle is $18.", "B1")
    case["catalog"].append({"product_id": "B1", "name": "Volt 120 Bottle", "category": "bottles", "price": 18.0,
                            "in_stock": True, "claims": []})
    assert [f.excerpt for f in check_case(case, RULES)[1] if f.rule_id == "facts.claims"] == []


@pytest.mark.parametrize("name,text,words", [
    ("claim-units.yaml", "units:\n  g: [mass]\n", ["claim-units.yaml", "units.g"]),
    ("claim-materials.yaml", "families:\n  wood: ['(oak']\n", ["claim-materials.yaml", "(oak", "regex"]),
    ("claim-features.yaml", "features: [\n", ["claim-features.yaml", "YAML"]),
])
def test_a_malformed_data_file_is_a_one_line_rule_error(tmp_path, name, text, words):
    pack = _pack(tmp_path)
    (pack / "compliance" / "vocab" / name).write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as e:
        load_rules([pack / "brand_rules", pack / "compliance"])
    msg = str(e.value)
    assert all(w in msg for w in words) and "Traceback" not in msg, msg
