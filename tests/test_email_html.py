"""The e-mail HTML part (contentgen.email_html): structure, escaping, links, and how Chromium shows it.

Gmail and Outlook drop <details>/<summary> and ignore max-width on a <div>:
the HTML must be tables with inline styles, the "Why was this recommended?"
text visible under each product, and nothing the model or a member wrote may
become markup.
"""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from types import SimpleNamespace as NS

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contentgen.assemble import assemble, footer, product_line, text_version
from contentgen.config import Brand
from contentgen.email_html import WHY, parts_from_message, render_html, unsubscribe_url
from contentgen.models import Draft, Explanation, Member, PlannedProduct, Plan, Product, RenderedMessage

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

PRODUCTS = (Product(product_id="P1", name="Summit Rain Jacket", category="outdoor", price=113.99),
            Product(product_id="P2", name="Summit Rain Jacket Pro", category="outdoor", price=189.0),
            Product(product_id="P3", name="Luma Night Cream", category="beauty", price=45.0))


def campaign():
    return NS(brand=Brand(), campaign_id="c1")


def plan(tier: int = 3, products=PRODUCTS, locale: str = "en-US") -> Plan:
    m = Member(member_id="M1", first_name="Ana", segment="Enthusiasts", churn_risk=0.1, opt_in_tier=tier,
               locale=locale)
    return Plan(member=m, action="send", products=tuple(PlannedProduct(product=p, evidence=()) for p in products))


def draft(**kw) -> Draft:
    base = dict(subject="Picks for {first_name}", preheader="Three things for the season",
                body="We gathered a few things you'll use.",
                explanations=(Explanation(product_id="P1", text="You looked at rain jackets."),
                              Explanation(product_id="P2", text="Members who hike often pick this one."),
                              Explanation(product_id="P3", text="It suits the season ahead.")))
    base.update(kw)
    return Draft(**base)


class _Text(HTMLParser):
    """Visible text and links of an HTML page (what a reader sees), skipping <style>/<head> and comments."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self._skip = 0
        self._href: str | None = None
        self._anchor: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in ("style", "title", "script"):
            self._skip += 1
        if tag == "a":
            self._href = dict(attrs).get("href")
            self._anchor = []

    def handle_endtag(self, tag):
        if tag in ("style", "title", "script"):
            self._skip -= 1
        if tag == "a" and self._href is not None:
            self.links.append((" ".join("".join(self._anchor).split()), self._href))
            self._href = None

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)
            if self._href is not None:
                self._anchor.append(data)


def read(html: str) -> _Text:
    p = _Text()
    p.feed(html)
    p.close()
    return p


def visible(html: str) -> str:
    return " ".join("".join(read(html).text).split())


def test_email_is_table_layout_without_details_or_outside_resources():
    msg = assemble(plan(), draft(), campaign())
    h = msg.html
    tags = set(read(h).tags)
    assert "table" in tags and "td" in tags
    assert not tags & {"details", "summary", "script", "link", "iframe", "form", "img"}
    assert "<!--[if mso" in h  # Outlook's scaffolding (fixed-width tables around every section)
    assert "@import" not in h and "fonts.googleapis" not in h
    # every href is an absolute https link (no javascript:, no relative links)
    assert all(href.startswith("https://") for _, href in read(h).links)
    assert h.startswith("<!doctype html>") and 'lang="en"' in h
    # the preheader is the hidden preview text; the subject is the title
    assert "Three things for the season" in h and "<title>Picks for Ana</title>" in h


def test_each_explanation_is_visible_under_its_own_product():
    msg = assemble(plan(), draft(), campaign())
    text = visible(msg.html)
    # reading order: product name, its price, "Why was this recommended?", its explanation; then the next product
    order = ["Hi Ana,", "We gathered a few things you'll use.",
             "Summit Rain Jacket", "$113.99", WHY, "You looked at rain jackets.",
             "Summit Rain Jacket Pro", "$189.00", WHY, "Members who hike often pick this one.",
             "Luma Night Cream", "$45.00", WHY, "It suits the season ahead.",
             "Shop your picks", "— The AthenaPlus team", "Unsubscribe"]
    pos = 0
    for piece in order:
        nxt = text.find(piece, pos)
        assert nxt >= 0, f"{piece!r} missing or out of order in: {text[pos:pos + 300]!r}"
        pos = nxt + len(piece)
    # "Summit Rain Jacket Pro" is its own product, not the jacket's line with "Pro" left over
    parts = parts_from_message(msg, plan(), campaign())
    cards = [p for kind, v in parts.blocks if kind == "products" for p in v]
    assert [(c.product_id, c.detail) for c in cards] == [("P1", "$113.99"), ("P2", "$189.00"), ("P3", "$45.00")]


def test_tier1_message_has_no_why_section():
    msg = assemble(plan(tier=1), draft(), campaign())
    assert WHY not in visible(msg.html)
    assert "Summit Rain Jacket" in visible(msg.html)


def test_product_links_when_known_and_plain_names_otherwise():
    p = plan()
    # a link carried as data by the message (how assembly may hand product URLs over)
    msg = assemble(p, draft(), campaign())
    msg = RenderedMessage.model_validate({**msg.model_dump(), "product_urls": {"P1": "https://athenaplus.example/p/P1?utm_source=email"}})
    links = dict(read(render_html(msg, p, campaign())).links)
    assert links["Summit Rain Jacket"] == "https://athenaplus.example/p/P1?utm_source=email"
    assert "Luma Night Cream" not in links  # no URL yet: the name is shown without a link
    # a link printed on the product's line in the text part
    body = msg.body.replace("Luma Night Cream: $45.00", "Luma Night Cream: $45.00 https://athenaplus.example/p/P3")
    msg2 = msg.model_copy(update={"body": body})
    h = render_html(msg2, p, campaign())
    assert dict(read(h).links)["Luma Night Cream"] == "https://athenaplus.example/p/P3"
    assert "https://athenaplus.example/p/P3" not in visible(h)  # the link is on the name, not printed twice
    # a non-http "link" never becomes an href
    msg3 = RenderedMessage.model_validate({**msg.model_dump(), "product_urls": {"P3": "javascript:alert(1)"}})
    assert "javascript:" not in render_html(msg3, p, campaign())


def test_explanation_printed_under_its_product_in_the_text_part_is_not_shown_twice():
    p = plan()
    msg = assemble(p, draft(), campaign())
    lines = []
    for line in msg.body.split("\n"):
        lines.append(line)
        for pp, x in zip(p.products, msg.explanations):
            if line == product_line(pp):
                lines.append(f"  {WHY} {x.text}")
    msg = msg.model_copy(update={"body": "\n".join(lines)})
    text = visible(render_html(msg, p, campaign()))
    assert text.count("You looked at rain jackets.") == 1 and text.count(WHY) == 3


def test_footer_links_and_unsubscribe_url():
    c = campaign()
    msg = assemble(plan(), draft(), c)
    url = unsubscribe_url(msg.footer)
    assert url and url.startswith("https://athenaplus.example/unsubscribe?t=")
    assert url == unsubscribe_url(footer(c, plan()))
    links = dict(read(msg.html).links)
    assert links["Unsubscribe"] == url
    assert links["Manage your preferences"] == c.brand.preferences_url
    assert links["Your privacy dashboard"] == c.brand.privacy_dashboard_url  # tier 3 only
    assert "400 Market Street" in visible(msg.html)
    assert unsubscribe_url("no links here | Unsubscribe: ftp://x") is None


def test_reviewer_edited_body_and_unplaced_explanations_still_render():
    p = plan()
    msg = assemble(p, draft(), campaign())
    edited = msg.model_copy(update={"body": "Hi Ana,\n\nA shorter note from us.\n\n— The AthenaPlus team"})
    text = visible(render_html(edited, p, campaign()))
    assert "A shorter note from us." in text
    # no product lines left: the explanations are still shown, each with its product's name
    assert "Summit Rain Jacket: You looked at rain jackets." in text and WHY in text


_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80).filter(str.strip)
_HOSTILE = st.one_of(_TEXT, st.sampled_from(['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>',
                                             "</mj-text><mj-raw><script>x</script></mj-raw>", "a & b < c > d",
                                             "{{ api_trigger_properties.${x} }} %%=v(@x)=%%", "]]><!--"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=_HOSTILE, body=_HOSTILE, why=_HOSTILE, name=_HOSTILE)
def test_hostile_text_is_shown_as_text_never_markup(subject, body, why, name):
    p = plan(products=(Product(product_id="P9", name=name.strip(), category="x", price=10.0),))
    d = Draft(subject=subject, preheader="pre", body=body, explanations=(Explanation(product_id="P9", text=why),))
    msg = assemble(p, d, campaign())
    h = msg.html
    page = read(h)
    assert not set(page.tags) & {"script", "img", "details", "mj-text", "mj-raw", "iframe"}
    text = " ".join("".join(page.text).split())
    for piece in (msg.body.split("\n")[2], msg.explanations[0].text if msg.explanations else ""):
        assert " ".join(piece.split()) in text
    assert all(href.startswith("https://") for _, href in page.links)


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing: apt-get install -y chromium")
def test_chromium_shows_every_why_section_on_desktop_mobile_and_without_style_blocks(tmp_path):
    """Rendered by Chromium: the why text has real height under each product at 800 px and 380 px, the layout
    fits a phone without horizontal scrolling, and with every <style> block removed (clients that strip them)
    the same text is still shown."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    msg = assemble(plan(), draft(), campaign())
    stripped = re.sub(r"<style[^>]*>.*?</style>", "", msg.html, flags=re.S)
    assert "<style" not in stripped
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for html_doc, width in ((msg.html, 800), (msg.html, 380), (stripped, 800)):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.set_content(html_doc)
                for text in ("You looked at rain jackets.", "Members who hike often pick this one.",
                             "It suits the season ahead."):
                    box = page.get_by_text(text, exact=True).bounding_box()
                    assert box and box["height"] > 8 and box["width"] > 50, (width, text, box)
                whys = page.get_by_text(WHY, exact=True)
                assert whys.count() == 3 and all(whys.nth(i).is_visible() for i in range(3))
                scroll_w = page.evaluate("document.documentElement.scrollWidth")
                assert scroll_w <= width, (width, scroll_w)
                # each explanation sits below its product's name
                name_y = page.get_by_text("Luma Night Cream", exact=True).bounding_box()["y"]
                why_y = page.get_by_text("It suits the season ahead.", exact=True).bounding_box()["y"]
                assert why_y > name_y
                page.close()
        finally:
            browser.close()
