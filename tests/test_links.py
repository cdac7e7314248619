"""Links a marketer can use (issue 19): per-product links with tracking, each explanation under its product
and naming it in the text part, the same in the HTML, and the message's structure kept for other renderers."""

from __future__ import annotations

import datetime as dt
import json
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

from contentgen.assemble import assemble, member_hash, text_layout, text_version
from contentgen.config import Campaign, Inputs, Tracking
from contentgen.models import Draft, Evidence, Explanation, Member, Offer, Product, Recommendation
from contentgen.plan import Planner
from contentgen.repair import export_record
from tests.util import REPO

SEND = dt.date(2026, 11, 24)
CAT = {p.product_id: p for p in [
    Product(product_id="P1", name="TrailLite Running Socks", category="running", price=14.0),
    Product(product_id="P3", name="Aurora Rain Jacket", category="outdoor", price=129.0),
]}
OFFERS = [Offer(offer_id="O1", kind="percent_off", value=15, applies_to=("P3",), valid_from=SEND,
                valid_until=SEND + dt.timedelta(days=20))]
EV = (Evidence(source="purchase", detail="bought trail shoes"),)


def campaign(**kw) -> Campaign:
    base = dict(campaign_id="wk48", send_date=SEND, holdout_share=0.0,
                inputs=Inputs(members="m.csv", recommendations="r.jsonl", catalog="c.csv", offers="o.jsonl"),
                prompts_dir=REPO / "prompts", rules_dirs=(REPO / "brand_rules", REPO / "compliance"))
    base.update(kw)
    return Campaign(**base)


def message(c: Campaign, channel: str = "email"):
    m = Member(member_id="M77", first_name="Nia", segment="Enthusiasts", churn_risk=0.2, opt_in_tier=2,
               channels=("email", "sms", "push", "inapp"), preferred_channel=channel)
    plan = Planner(c, CAT, OFFERS).plan(m, (Recommendation(product_id="P1", score=0.9, evidence=EV),
                                            Recommendation(product_id="P3", score=0.8, evidence=EV)))
    draft = Draft(subject="Rain-ready runs", preheader="Two picks", body="Two picks for wet weeks ahead.",
                  explanations=(Explanation(product_id="P3", text="We recommended this because: (1) You run."),
                                Explanation(product_id="P1", text="We recommended this because: (1) Socks.")))
    return plan, assemble(plan, draft, c)


def test_each_product_has_a_tracked_link_and_the_cta_is_tracked():
    plan, msg = message(campaign())
    mh = member_hash("wk48", "M77")
    assert mh not in ("M77",) and len(mh) == 16
    for p in msg.products:
        u = urlsplit(p["url"])
        assert u.netloc == "athenaplus.example" and u.path == f"/p/{p['product_id']}"
        assert parse_qs(u.query) == {"utm_source": ["athenaplus"], "utm_medium": ["email"],
                                     "utm_campaign": ["wk48"], "utm_content": ["default"], "mh": [mh]}
    assert parse_qs(urlsplit(msg.cta_url).query)["mh"] == [mh]
    assert "M77" not in json.dumps(msg.products) + msg.cta_url  # no member id in any URL


def test_tracking_is_configurable():
    c = campaign(tracking=Tracking(utm_source="newsletter", utm_medium="crm-{channel}", utm_content="",
                                   utm_term="{product_id}", member_param="", extra={"cid": "{campaign_id}-x"}))
    _, msg = message(c)
    q = parse_qs(urlsplit(msg.products[0]["url"]).query)
    assert q == {"utm_source": ["newsletter"], "utm_medium": ["crm-email"], "utm_campaign": ["wk48"],
                 "utm_term": ["P1"], "cid": ["wk48-x"]}
    _, off = message(campaign(tracking=Tracking(enabled=False)))
    assert off.products[0]["url"] == "https://athenaplus.example/p/P1" and off.cta_url == c.brand.cta_url


def test_sms_links_stay_short_and_push_links_are_tracked():
    _, sms = message(campaign(), "sms")
    assert "https://athenaplus.example/picks Reply STOP" in sms.body
    _, push = message(campaign(), "push")
    assert "utm_medium=push" in push.cta_url


def test_in_the_text_part_each_explanation_is_under_its_product_and_names_it():
    plan, msg = message(campaign())
    text = text_version(msg)
    lines = text.split("\n")
    for p, name in (("P1", "TrailLite Running Socks"), ("P3", "Aurora Rain Jacket")):
        i = next(k for k, line in enumerate(lines) if line.startswith(name + ": $"))
        item = next(x for x in msg.products if x["product_id"] == p)
        expl = next(x for x in msg.explanations if x.product_id == p)
        assert lines[i + 1] == item["url"]
        assert lines[i + 2] == f"Why was this recommended? ({name}) {expl.text}"
    assert "15% off until December 14 ($109.65 for members)" in text
    # the layout maps every body and explanation span into the text (the studio marks findings with it)
    full, segs = text_layout(msg)
    assert full == text
    for field, start, at, n in segs:
        src = msg.body if field == "body" else msg.explanations[int(field[13])].text
        assert text[at:at + n] == src[start:start + n]
    assert sum(n for f, _, _, n in segs if f == "body") == len(msg.body)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.text, self._a = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._a = dict(attrs).get("href")

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())
        if self._a is not None and data.strip():
            self.links.append((self._a, data.strip()))

    def handle_endtag(self, tag):
        if tag == "a":
            self._a = None


def test_in_the_html_each_product_links_to_its_page_with_its_explanation_right_after():
    _, msg = message(campaign())
    parser = _Links()
    parser.feed(msg.html)
    by_name = dict((text, href) for href, text in parser.links)
    for p in msg.products:
        assert by_name[p["name"]] == p["url"]
    words = " ".join(parser.text)
    at = [words.index(p["name"]) for p in msg.products]
    for i, p in enumerate(msg.products):
        why = next(x.text for x in msg.explanations if x.product_id == p["product_id"])
        w = words.index(why)
        assert at[i] < w and (i + 1 == len(at) or w < at[i + 1]), p["name"]  # under its own product


def test_the_export_keeps_products_and_explanations_keyed_by_product():
    from contentgen.repair import Decision

    plan, msg = message(campaign())
    rec = export_record(plan, Decision("approved", msg, []))
    m = rec["message"]
    assert [p["product_id"] for p in m["products"]] == ["P1", "P3"]
    assert all({"url", "name", "price", "offer_price", "line"} <= set(p) for p in m["products"])
    assert {x["product_id"] for x in m["explanations"]} == {"P1", "P3"}
    assert m["text"] == text_version(msg)
