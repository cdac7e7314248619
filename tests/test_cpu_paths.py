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


# ------------------------------------------------------------------ prompts: the sandbox's remembered attribute check

import collections  # noqa: E402
import types  # noqa: E402

from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

from contentgen.prompts import _Sandbox  # noqa: E402


class _Liar:
    def __init__(self, claims):
        self._claims = claims

    @property
    def __class__(self):  # noqa: D401 - claims to be another type
        return self._claims


def _gen():
    yield 1


def test_sandbox_memo_refuses_what_jinja_refuses():
    objs = [[], {}, set(), collections.deque(), "s", 1, _Liar(str), _Liar(list), _Liar(dict), _gen(), _gen, str,
            (lambda: 0), "x".upper, types.SimpleNamespace(a=1), [].append]
    attrs = ("append", "clear", "pop", "update", "add", "keys", "upper", "mro", "__class__", "_x", "gi_frame",
             "__globals__", "__func__", "__self__", "func_code", "a", "format", "appendleft")
    plain, memo = ImmutableSandboxedEnvironment(), _Sandbox()
    for _ in range(2):  # the second time from the memo
        for obj in objs:
            for attr in attrs:
                assert memo.is_safe_attribute(obj, attr, None) == plain.is_safe_attribute(obj, attr, None), (obj, attr)


# ------------------------------------------------------------------ tracked links: parsed and encoded once per link

import hashlib  # noqa: E402
from types import SimpleNamespace as NS  # noqa: E402
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit  # noqa: E402

from contentgen import assemble as A  # noqa: E402
from contentgen.config import Tracking  # noqa: E402


def _tracked_before(url, campaign, plan, product_id=""):  # assemble.tracked as it was at fe3959f
    t = getattr(campaign, "tracking", None)
    if t is None or not t.enabled or not url:
        return url
    vals = {"campaign_id": campaign.campaign_id, "variant": plan.variant, "channel": plan.channel,
            "product_id": product_id}
    ours = [(k, getattr(t, k).format_map(vals)) for k in ("utm_source", "utm_medium", "utm_campaign",
                                                          "utm_content", "utm_term")]
    ours += [(k, v.format_map(vals)) for k, v in t.extra.items()]
    if t.member_param:
        mh = hashlib.sha256(f"{campaign.campaign_id}\x00track\x00{plan.member.member_id}".encode()).hexdigest()[:16]
        ours.append((t.member_param, mh))
    ours = [(k, v) for k, v in ours if v]
    parts = urlsplit(url)
    names = {k for k, _ in ours}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names] + ours
    return urlunsplit(parts._replace(query=urlencode(query)))


_names = st.sampled_from(["mh", "utm_source", "utm_term", "ref", "x y", "é", "a&b", ""])
_vals = st.sampled_from(["", "athenaplus", "{channel}", "{product_id}-{variant}", "a b&c=d", "ü/?#", "{campaign_id}"])
_urls = st.one_of(st.sampled_from(["https://x.example/p/P1", "https://x.example/p/P1?mh=old&ref=1",
                                   "https://x.example/?utm_source=them#frag", "https://x.example", "http://a/b?c",
                                   "https://x.example/p?ref=1&ref=2&empty=&mh", "/relative?q=1", "mailto:a@b"]),
                  st.builds(lambda a, b: f"https://x.example/{a}?{b}", st.text(max_size=5), st.text(max_size=8)))


@settings(max_examples=300, deadline=None)
@given(url=_urls, src=_vals, medium=_vals, term=_vals, extra=st.dictionaries(_names, _vals, max_size=3),
       mp=st.sampled_from(["mh", "", "utm_source", "ref"]), enabled=st.booleans(),
       members=st.lists(st.sampled_from(["M1", "M2", "M1590"]), min_size=1, max_size=3),
       variant=st.sampled_from(["default", "b"]), channel=st.sampled_from(["email", "push"]),
       pid=st.sampled_from(["", "P1", "P 2"]))
def test_tracked_link_cache_gives_what_it_gave(url, src, medium, term, extra, mp, enabled, members, variant, channel,
                                                pid):
    t = Tracking(enabled=enabled, utm_source=src, utm_medium=medium, utm_term=term, member_param=mp, extra=extra)
    for cid in ("wk48", "wk49"):
        campaign = NS(campaign_id=cid, tracking=t)
        for m in members:
            plan = NS(variant=variant, channel=channel, member=NS(member_id=m))
            assert A.tracked(url, campaign, plan, pid) == _tracked_before(url, campaign, plan, pid)
