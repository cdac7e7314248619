"""Fast paths of the engine's per-member work (issue 14): each gives exactly what the slow path gives."""

from __future__ import annotations

import json

import pytest

from contentgen.export import _RAW_BREAKS, escape_breaks, jsonl_line


@pytest.mark.parametrize("ch", ["\x85", "\u2028", "\u2029"], ids=ascii)
def test_escape_breaks_each_break_alone(ch):
    # the fast path skips str.translate when none of the three is present: each one alone must still be escaped
    text = json.dumps({"body": f"a{ch}b", "html": "<p>x</p>" * 50}, ensure_ascii=False)
    out = escape_breaks(text)
    assert out == text.translate(_RAW_BREAKS) and ch not in out
    assert json.loads(out) == json.loads(text)
    assert ch not in jsonl_line({"x": ch})


def test_escape_breaks_plain_text_unchanged():
    text = json.dumps({"body": "Hi — “quoted” café\n", "n": 1}, ensure_ascii=False)
    assert escape_breaks(text) is text


# ------------------------------------------------------------------ e-mail HTML: compiled layouts with slots

import mjml  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from contentgen import email_html as E  # noqa: E402

_ODD = ["\\", "\t", "\n", "\r", "\x00", "\x0b", "\x85", "\xa0", "\u2028", "\u202e", "\u200b", "\ufeff", "\u3000",
        "\u0301", "\U0001f3fb", "&", "<", ">", '"', "'", "&amp;", "&#x27;", "cgvslot00000x", "CGVSLOT00001X", "\tcgvslot00001x", "cgvslot\u0660\u0660\u0660\u0660\u0661x", "  ",
        "é", "—", "’", "😀", "{", "}", "%", "$", "`"]
_text = st.one_of(
    st.sampled_from(["Hi there", "Autumn picks", "A — B", "Sale: 20% off", "", "Luma Shampoo Bar"]),
    st.lists(st.one_of(st.sampled_from(_ODD), st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFFF),
                                                      max_size=6)), max_size=6).map("".join),
)
_url = st.one_of(st.none(), st.sampled_from(["https://x.example/p/1?a=1&b=2", "http://y.example/", "javascript:x",
                                             "https://z.example/\u202e", "https://q.example/a\\b",
                                             "https://x.example/e\u0301"]),
                 _text.map(lambda s: "https://x.example/" + s))
_product = st.builds(E.ProductPart, product_id=st.sampled_from(["P1", "P2"]), name=_text, detail=_text, url=_url,
                     why=st.one_of(st.none(), _text))
_block = st.one_of(st.tuples(st.just("text"), _text), st.tuples(st.just("products"), st.lists(_product, min_size=1,
                                                                                                max_size=3).map(tuple)))
_parts = st.builds(E.EmailParts, subject=_text, preheader=_text, brand=_text,
                   blocks=st.lists(_block, max_size=4).map(tuple), cta_text=_text, cta_url=st.one_of(_url, _text),
                   footer=st.lists(st.builds(E.FooterPart, label=_text, url=_url), max_size=4).map(tuple),
                   signoff=_text, unplaced_why=st.lists(st.tuples(_text, _text), max_size=2).map(tuple),
                   lang=st.sampled_from(["en", "fr", "", "e\\n", "d\u00e9"]))


def _slow(parts):
    try:
        return mjml.mjml2html(E.to_mjml(parts))
    except Exception as e:  # noqa: BLE001 - the fast path must fail the same way
        return type(e)


def _fast(parts):
    try:
        return E.render_email(parts)
    except Exception as e:  # noqa: BLE001
        return type(e)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_parts)
def test_compiled_layout_gives_mrmls_own_html(parts):
    want = _slow(parts)
    assert _fast(parts) == want
    assert _fast(parts) == want  # the second time from the compiled layout


@pytest.mark.parametrize("odd", _ODD, ids=ascii)
def test_compiled_layout_each_odd_text_in_every_place(odd):
    # each odd text in every member-specific place at once (subject, language, links, names, footer ...)
    url = "https://x.example/" + odd
    p = E.ProductPart("P1", odd, odd, url, odd)
    parts = E.EmailParts(subject=odd, preheader=odd, brand=odd, blocks=(("text", odd), ("products", (p,))),
                         cta_text=odd, cta_url=url, footer=(E.FooterPart(odd, url), E.FooterPart(odd)), signoff=odd,
                         unplaced_why=((odd, odd),), lang=odd)
    for x in (odd, "A" + odd + "b"):
        parts2 = E.EmailParts(**{**parts.__dict__, "subject": x, "lang": x, "cta_url": "https://x.example/" + x})
        assert _fast(parts2) == _slow(parts2)
        assert _fast(parts2) == _slow(parts2)


def test_compiled_layout_is_reused_across_members():
    E._LAYOUTS.clear()
    base = dict(preheader="Useful things", brand="AthenaPlus", cta_text="Shop", cta_url="https://x.example/c?a=1&b=2",
                footer=(E.FooterPart("Unsubscribe", "https://x.example/u?t=1"),), signoff="— The team")
    for who in ("Ann", "Bob", "Chloé", "Dara O'Neil"):
        parts = E.EmailParts(subject=f"{who}, picks", blocks=(("text", f"Hi {who},\nNice & warm"),), **base)
        assert E.render_email(parts) == mjml.mjml2html(E.to_mjml(parts))
    assert len(E._LAYOUTS) == 1 and list(E._LAYOUTS.values())[0] is not None
