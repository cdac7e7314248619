"""The personal fallback (issue 19 and issue 13 item 6): tier-2/3 members whose model-written e-mail failed
keep their own picks, each explained from the evidence their tier allows, in human-written copy."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from contentgen import gates
from contentgen.assemble import assemble, text_version
from contentgen.config import load_campaign
from contentgen.errors import TemplateError
from contentgen.fallback import Reasons
from contentgen.load import iter_members, load_catalog, load_offers
from contentgen.models import TIER_SOURCES, Evidence, Member, Offer, PlannedProduct, Product, Recommendation
from contentgen.plan import Planner
from contentgen.prompts import Prompts
from contentgen.repair import Decider, gate_context
from contentgen.sample_data import write_sample_data
from tests.util import REPO


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    paths = write_sample_data(tmp_path_factory.mktemp("fb"), 500, seed=5)
    c = load_campaign(paths["campaign"])
    catalog, _ = load_catalog(c.inputs.catalog)
    offers, _ = load_offers(c.inputs.offers)
    planner = Planner(c, catalog, offers)
    prompts = Prompts(c.prompts_dir, c)
    rules = gates.load_rules(c.rules_dirs)
    plans = []
    for row in iter_members(c.inputs.members, c.inputs.recommendations, catalog):
        if row.member is None:
            continue
        plan = planner.plan(row.member, row.recommendations)
        if plan.action == "send":
            plans.append(plan)
    return c, catalog, offers, planner, prompts, rules, plans


async def _never(messages, schema):  # the model is not asked for a fallback
    raise AssertionError("the fallback must not call the model")


def test_every_tier2_and_tier3_member_gets_their_own_picks_explained(world):
    """Through the decide step's fallback: own picks, one explanation per pick, gates pass, no model call."""
    c, catalog, offers, planner, prompts, rules, plans = world
    decider = Decider(c, prompts, rules, _never, offers, catalog, planner)
    personal = 0
    for plan in plans:
        if plan.member.opt_in_tier == 1 or plan.channel not in ("email", "inapp"):
            continue
        d = decider.fallback(plan, [], [])
        assert d.outcome == "fallback" and d.send and d.fallback == "personal", plan.member.member_id
        assert [x.product_id for x in d.message.explanations] == [pp.product.product_id for pp in plan.products]
        assert gates.verdict(decider.check(plan, d.message)) == "pass"
        personal += 1
    assert personal > 200


def test_tier1_members_get_the_segment_message(world):
    c, catalog, offers, planner, prompts, rules, plans = world
    decider = Decider(c, prompts, rules, _never, offers, catalog, planner)
    t1 = [p for p in plans if p.member.opt_in_tier == 1][:20]
    assert t1
    for plan in t1:
        d = decider.fallback(plan, [], [])
        assert d.fallback == "segment" and d.message.explanations == ()


def test_reasons_come_only_from_what_the_tier_allows(world):
    """Each numbered reason maps back to one evidence source the pick carries, and the tier allows it."""
    c, catalog, offers, planner, prompts, rules, plans = world
    r = prompts.fallbacks.reasons
    texts = {src: {e.text for e in entries} for src, entries in r.by_source.items()}
    patterns = {src: [re.compile(re.escape(e.text).replace(re.escape("{what}"), ".+")) for e in entries]
                for src, entries in r.by_source.items()}
    for plan in plans:
        if plan.member.opt_in_tier == 1:
            continue
        draft = prompts.fallbacks.personal(plan)
        for pp, x in zip(plan.products, draft.explanations):
            reasons = re.findall(r"\(\d\) (.+?)(?= \(\d\) |$)", x.text)
            assert 1 <= len(reasons) <= r.max_reasons
            carried = {e.source for e in pp.evidence}
            for reason in reasons:
                src = [s for s in texts if any(p.fullmatch(reason) for p in patterns[s])]
                assert src and src[0] in carried and src[0] in TIER_SOURCES[plan.member.opt_in_tier], reason
            said = re.sub(r"\(\d\) ", "", x.text)
            for leaked in (r"\d", "viewed", "times", "noticed", "searched"):
                assert not re.search(leaked, said), x.text


def _member(**kw) -> Member:
    base = dict(member_id="M9", first_name="Nia", segment="Bargain Hunters", churn_risk=0.2, opt_in_tier=2)
    base.update(kw)
    return Member(**base)


CAT = {p.product_id: p for p in [
    Product(product_id="A", name="Cobalt Cable Knit Beanie", category="apparel", price=25.0),
    Product(product_id="B", name="Loom Organic Crew Tee", category="apparel", price=28.0),
]}
EV = (Evidence(source="purchase", detail="bought flannel shirts in September"),
      Evidence(source="similar_members", detail="members with similar purchases rated it highly"),
      Evidence(source="browsing", detail="viewed beanies 3 times this week"))


def _copy(world, member, offers):
    c = world[0]
    p = Planner(c, CAT, offers)
    plan = p.plan(member, (Recommendation(product_id="A", score=0.9, evidence=EV),
                           Recommendation(product_id="B", score=0.8, evidence=EV[:2])))
    draft = Prompts(c.prompts_dir, c).fallbacks.personal(plan, p.framings.churn_threshold)
    return plan, draft, assemble(plan, draft, c)


def test_bargain_hunters_see_a_member_price_only_where_an_offer_exists(world):
    send = world[0].send_date
    offer = Offer(offer_id="O", kind="percent_off", value=20, applies_to=("A",), valid_from=send - dt.timedelta(days=3),
                  valid_until=send + dt.timedelta(days=30))
    _, with_offer, msg = _copy(world, _member(), [offer])
    assert "member price" in (with_offer.subject + with_offer.body).lower()
    assert "$20.00 for members" in msg.body
    _, without, _ = _copy(world, _member(), [])
    assert "member price" not in (without.subject + without.preheader + without.body).lower()


def test_high_churn_members_are_thanked(world):
    _, low, _ = _copy(world, _member(segment="Enthusiasts", churn_risk=0.1), [])
    _, high, _ = _copy(world, _member(segment="Enthusiasts", churn_risk=0.9), [])
    assert "Thanks for being part of AthenaPlus" in high.body and "Thanks" not in low.body


def test_tier2_reasons_never_use_browsing_and_tier3_may(world):
    _, t2, _ = _copy(world, _member(opt_in_tier=2), [])
    _, t3, _ = _copy(world, _member(opt_in_tier=3), [])
    assert "shopping for" not in t2.explanations[0].text
    assert "shopping for" in t3.explanations[0].text
    assert "It goes well with the flannel shirts you bought from us." in t2.explanations[0].text


def test_the_text_part_names_each_product_above_its_reasons(world):
    plan, _, msg = _copy(world, _member(), [])
    text = text_version(msg)
    for pp, x in zip(plan.products, msg.explanations):
        block = text[text.index(pp.product.name + ":"):]
        lines = block.split("\n")
        assert lines[1].startswith(f"https://athenaplus.example/p/{pp.product.product_id}?")
        assert lines[2] == f"Why was this recommended? ({pp.product.name}) {x.text}"


@pytest.mark.parametrize("yaml_text,needle", [
    ("reasons: {}\n", "no reason for evidence source"),
    ("reasons:\n  purchase:\n    - match: 'x'\n      text: t\n", "last one has no 'match'"),
    ("reasons:\n  shopping:\n    - text: t\n", "unknown evidence source 'shopping'"),
    ("reasons:\n  purchase:\n    - text: 'you bought {what}'\n", "(?P<what>"),
    ("reasons: [\n", "not valid YAML"),
], ids=["empty", "last-has-match", "unknown-source", "slot-without-group", "bad-yaml"])
def test_a_broken_reasons_file_names_file_and_fix(tmp_path, yaml_text, needle):
    p = tmp_path / "reasons.yaml"
    p.write_text(yaml_text)
    with pytest.raises(TemplateError) as ei:
        Reasons.load(p)
    assert needle in ei.value.render() and str(p) in ei.value.render()


def test_the_reasons_file_is_data_in_the_prompts_folder():
    r = Reasons.load(REPO / "prompts" / "fallback" / "reasons.yaml")
    pp = PlannedProduct(product=CAT["A"], evidence=(Evidence(source="stated_preference",
                                                             detail="listed trail running as an interest"),))
    assert r.explain(pp) == "We recommended this because: (1) It fits your interest in trail running."
    assert r.explain(pp, slots=False) == ("We recommended this because: (1) It fits the interests you've shared "
                                          "with us.")


def test_a_reason_the_gates_reject_is_retried_without_words_from_the_evidence(world):
    """'It fits your interest in vegan beauty' names a claim the product lacks: the facts gate objects, the
    fallback tries again with reasons that take no words from the evidence, and that one is sent."""
    c, catalog, offers, planner, prompts, rules, plans = world
    p = Planner(c, CAT, [])
    vegan = (Evidence(source="stated_preference", detail="told us they like vegan beauty"),)
    plan = p.plan(_member(), (Recommendation(product_id="A", score=0.9, evidence=vegan),))
    decider = Decider(c, prompts, rules, _never, [], CAT, p)
    attempts: list = []
    d = decider.fallback(plan, [], attempts)
    assert d.fallback == "personal" and "vegan" not in d.message.explanations[0].text
    assert [a["fallback"] for a in attempts] == ["personal", "personal"]
    assert "vegan" in attempts[0]["response"]
    assert gates.verdict(gates.run_gates(d.message, gate_context(plan, c, [], CAT), rules)) == "pass"
