"""Words the gates must read in context (classes found by sets H and I, one test each, both ways):
a price that ends the previous sentence, a review's words a catalog claim quotes, the product the
member already owns, a common word opening a sentence, the product a price or free shipping is
said of, "both" stretching an offer, and a recommended product the catalog lacks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from contentgen.check import check_case
from contentgen.gates import load_rules
from tests.util import CASE_FOOTER

FOOTER = CASE_FOOTER

BASE: dict[str, Any] = {
    "case_id": "ctx", "send_date": "2026-06-17",
    "member": {"member_id": "M7", "first_name": "Ola", "segment": "Enthusiasts", "churn_risk": 0.2,
               "opt_in_tier": 2, "locale": "en-US"},
    "recommendations": [{"product_id": "P1", "evidence": [
        {"source": "purchase", "detail": "bought Kestrel Trail Lamp"},
        {"source": "stated_preference", "detail": "likes night hikes"}]}],
    "offers": [],
    "catalog": [
        {"product_id": "P1", "name": "Harbor Dry Bag 20L", "category": "bags", "price": 32.0, "in_stock": True,
         "claims": ["roll-top closure", 'rated "best value bag" by Trail Gear Review, 2025']},
        {"product_id": "P2", "name": "Kestrel Trail Lamp", "category": "lights", "price": 45.0, "in_stock": True,
         "claims": []},
        {"product_id": "P3", "name": "Closed-Back Camp Stool", "category": "camp", "price": 19.0, "in_stock": True,
         "claims": []},
    ],
    "message": {"subject": "A dry bag for night hikes", "preheader": "Roll-top and ready.",
                "body": "Hi Ola,\n\nThe Harbor Dry Bag 20L is $32.\n\n— The AthenaPlus team",
                "cta_text": "See the bag", "cta_url": "https://athenaplus.example/p/harbor-dry-bag",
                "explanations": [{"product_id": "P1", "text": "We recommended this because: (1) You told us you "
                                                              "like night hikes."}],
                "footer": FOOTER},
}

RULES = load_rules()


def _run(body: str | None = None, **changes: Any) -> tuple[str, set[str]]:
    case = copy.deepcopy(BASE)
    if body is not None:
        case["message"]["body"] = "Hi Ola,\n\n" + body + "\n\n— The AthenaPlus team"
    for key, value in changes.items():
        if key in case["message"]:
            case["message"][key] = value
        else:
            case[key] = value
    verdict, findings = check_case(case, RULES)
    return verdict, {f.rule_id for f in findings if f.severity != "info"}


def test_the_base_case_is_clean() -> None:
    assert _run() == ("pass", set())


def test_a_price_ending_the_sentence_before_a_date_makes_no_product() -> None:
    pct = [{"offer_id": "PCT", "kind": "percent_off", "value": 15, "applies_to": ["P1"], "applies_to_category": None,
            "min_order": None, "valid_from": "2026-06-01", "valid_until": "2026-06-28", "audience": "all"}]
    assert _run("The Harbor Dry Bag 20L is $32. Through June 28, it is 15% off.", offers=pct)[0] == "pass"
    # a capitalized phrase right after a price in the same sentence still reads as a product
    assert "facts.unknown-product" in _run("The Harbor Dry Bag 20L is $32 with the Harbor Dry Sack.")[1]


def test_words_a_catalog_claim_quotes_are_the_catalogs() -> None:
    ok = 'The Harbor Dry Bag 20L is $32. Trail Gear Review called it "best value bag" in 2025.'
    assert _run(ok) == ("pass", set())
    changed = 'The Harbor Dry Bag 20L is $32. Trail Gear Review called it "the best bag ever" in 2025.'
    assert "brand.superlatives" in _run(changed)[1]


def test_a_product_the_member_bought_is_context_not_a_pick() -> None:
    said = "The Harbor Dry Bag 20L is $32, and your Kestrel fits inside."
    assert _run(said) == ("pass", set())
    no_purchase = copy.deepcopy(BASE["recommendations"])
    no_purchase[0]["evidence"] = [{"source": "stated_preference", "detail": "likes night hikes"}]
    assert "facts.product-not-recommended" in _run(said, recommendations=no_purchase)[1]


def test_a_common_word_opening_a_sentence_is_not_the_product_a_price_is_said_of() -> None:
    assert _run("The Harbor Dry Bag 20L is back.", preheader="Back in stock and still $32.")[0] == "pass"
    assert "facts.price" in _run("The Harbor Dry Bag 20L is back.", preheader="Back in stock and still $19.")[1]


FREE_SHIP = [{"offer_id": "FS", "kind": "free_shipping", "value": 0, "applies_to": [], "applies_to_category": "bags",
              "min_order": 50, "valid_from": "2026-06-01", "valid_until": "2026-06-30", "audience": "all"}]


def test_free_shipping_thresholds_and_the_product_it_is_said_of() -> None:
    ok = "Meet the Harbor Dry Bag 20L. It's $32, and through June 30 bag orders over $50 ship free."
    assert _run(ok, offers=FREE_SHIP)[0] == "pass"
    below = "Meet the Harbor Dry Bag 20L, ready for wet trails."
    assert "facts.free-shipping" in _run(below, offers=FREE_SHIP, preheader="Your dry bag ships free this month.")[1]
    assert _run(below, offers=FREE_SHIP, preheader="Bags, plus free shipping on orders over $50.")[0] == "pass"


def test_both_stretches_an_offer_past_its_products() -> None:
    two = copy.deepcopy(BASE["recommendations"]) + [
        {"product_id": "P3", "evidence": [{"source": "stated_preference", "detail": "likes night hikes"}]}]
    expl = [BASE["message"]["explanations"][0],
            {"product_id": "P3", "text": "We recommended this because: (1) You told us you like night hikes."}]
    offer = [{"offer_id": "PCT", "kind": "percent_off", "value": 15, "applies_to": ["P1"], "applies_to_category": None,
              "min_order": None, "valid_from": "2026-06-01", "valid_until": "2026-06-30", "audience": "all"}]
    body = "The Harbor Dry Bag 20L is $32 and the Closed-Back Camp Stool is $19."
    stretched = _run(body, recommendations=two, explanations=expl, offers=offer,
                     preheader="Two picks for night hikes, both 15% off until June 30.")
    assert "facts.percent-offer" in stretched[1]
    assert _run(body, recommendations=two, explanations=expl, offers=offer,
                preheader="Two picks for night hikes, and the bag is 15% off until June 30.")[0] == "pass"


def test_a_recommended_product_the_catalog_lacks_is_a_schema_finding() -> None:
    ghost = copy.deepcopy(BASE["recommendations"]) + [
        {"product_id": "P404", "evidence": [{"source": "stated_preference", "detail": "likes night hikes"}]}]
    verdict, ids = _run(recommendations=ghost)
    assert verdict == "fail" and "schema.recommendation-product" in ids


@pytest.mark.parametrize("footer_extra, rule", [("Member ID: M7", "compliance.pii"), ("", None)])
def test_the_members_id_in_the_footer(footer_extra: str, rule: str | None) -> None:
    verdict, ids = _run(footer=FOOTER + ("\n" + footer_extra if footer_extra else ""))
    assert (rule in ids) if rule else verdict == "pass"


def test_vague_stock_words_backed_by_a_small_count_in_inventory_evidence() -> None:
    recs = [{"product_id": "P1", "evidence": [{"source": "stated_preference", "detail": "likes night hikes"},
                                              {"source": "inventory", "detail": "3 units left in stock"}]}]
    body = "The Harbor Dry Bag 20L is $32. Only a few are left in stock."
    assert _run(body, recommendations=recs)[0] == "pass"
    many = [{**recs[0], "evidence": [recs[0]["evidence"][0], {"source": "inventory", "detail": "40 units in stock"}]}]
    assert "facts.scarcity" in _run(body, recommendations=many)[1]


def test_an_offer_said_of_its_own_category_by_one_of_its_words() -> None:
    offer = [{"offer_id": "CAT", "kind": "percent_off", "value": 10, "applies_to": [], "applies_to_category": "Lights",
              "min_order": None, "valid_from": "2026-06-01", "valid_until": "2026-06-30", "audience": "all"}]
    assert _run("The Harbor Dry Bag 20L is $32. Everything in our lights range is 10% off until June 30.",
                offers=offer)[0] == "pass"
    assert "facts.percent-offer" in _run("The Harbor Dry Bag 20L is $32. Everything in the shop is 10% off until "
                                         "June 30.", offers=offer)[1]
    assert "facts.percent-offer" in _run("The Harbor Dry Bag 20L is $32. All dry bags are 10% off until "
                                         "June 30.", offers=offer)[1]


def test_the_order_shipping_free_is_the_baskets_total() -> None:
    body = "The Harbor Dry Bag 20L is $32. Add a second dry bag and the order ships free through June 30."
    assert "facts.free-shipping" not in _run(body, offers=FREE_SHIP)[1]
    alone = "The Harbor Dry Bag 20L is $32. Your dry bag ships free through June 30."
    assert "facts.free-shipping" in _run(alone, offers=FREE_SHIP)[1]


def test_a_fraction_before_a_measure_is_no_date() -> None:
    assert _run("The Harbor Dry Bag 20L is $32, and its strap adjusts in 1/3 stop steps.")[0] == "pass"
