"""The e-mail's HTML part: table layout from MJML that renders in Gmail and Outlook.

Gmail and Outlook drop ``<details>``, ``<summary>`` and scripts, Outlook ignores
``max-width`` on a ``<div>`` and most of CSS: a mail that has to render there is
a nest of tables with inline styles plus ``<!--[if mso]>`` scaffolding. We write
the message as MJML and compile it with MRML (the Rust port of MJML, through
``mjml-python``), which produces exactly that.

The HTML is built from the message's structured parts, never from model markup
(the model writes no markup; every piece of text is escaped here):

* subject (``<title>``) and preheader (the hidden preview text);
* the body, split into paragraphs; the lines that name a planned product
  (``Name: price ...``, as :mod:`contentgen.assemble` writes them) become a
  product card: the name (a link when the product has a URL: one found on its
  lines, or one the message carries in ``product_urls``), the price and offer
  text, and under it "Why was this recommended?" with that product's
  explanation, always visible (no ``<details>``);
* explanations whose product has no line of its own are listed after the
  products; the call to action is a bulletproof button; the footer's
  ``Label: https://...`` parts become links (unsubscribe, preferences, privacy).

:func:`parts_from_message` turns a :class:`~contentgen.models.RenderedMessage`
and its plan into :class:`EmailParts`; :func:`render_email` turns those into
HTML. :func:`unsubscribe_url` finds the footer's unsubscribe link (for the
``List-Unsubscribe`` header of the ESP exports).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import mjml

WHY = "Why was this recommended?"
_URL = re.compile(r"https?://[^\s<>\"')]+")
_TRAIL = " \t-–—:|,;("


@dataclass(frozen=True)
class Theme:
    brand: str = "#0f5c4d"
    page: str = "#f6f5f2"
    card: str = "#ffffff"
    text: str = "#1f2328"
    muted: str = "#5f646b"  # 5.9:1 on white (WCAG AA for small text)
    tint: str = "#f1f6f4"
    rule: str = "#e3e1dc"
    font: str = "Helvetica, Arial, sans-serif"


THEME = Theme()


@dataclass(frozen=True)
class ProductPart:
    product_id: str
    name: str
    detail: str = ""  # price and offer text, as the engine wrote it
    url: str | None = None
    why: str | None = None


@dataclass(frozen=True)
class FooterPart:
    label: str
    url: str | None = None


@dataclass(frozen=True)
class EmailParts:
    subject: str
    preheader: str
    brand: str
    blocks: tuple[tuple[str, Any], ...]  # ("text", str) | ("products", tuple[ProductPart, ...])
    cta_text: str = ""
    cta_url: str = ""
    footer: tuple[FooterPart, ...] = ()
    signoff: str = ""
    unplaced_why: tuple[tuple[str, str], ...] = ()  # (product name, explanation) with no product line
    lang: str = "en"
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ parts


def safe_url(url: str | None) -> str | None:
    """Only absolute http(s) links get an href; anything else is shown as text, not linked."""
    if not url:
        return None
    url = url.strip()
    return url if re.fullmatch(r"https?://[^\s<>\"]+", url) else None


def footer_parts(footer: str) -> tuple[FooterPart, ...]:
    out = []
    for part in (footer or "").split(" | "):
        part = part.strip()
        if not part:
            continue
        label, sep, url = part.partition(": ")
        link = safe_url(url) if sep else None
        out.append(FooterPart(label, link) if link else FooterPart(part))
    return tuple(out)


def unsubscribe_url(footer: str) -> str | None:
    """The footer's unsubscribe link (``Unsubscribe: https://...``), or None."""
    for p in footer_parts(footer):
        if p.url and p.label.strip().lower().startswith("unsubscribe"):
            return p.url
    return None


def _known_urls(msg: Any, plan: Any) -> dict[str, str]:
    """Product links the message or plan carries as data (``product_urls`` / ``products[].url``)."""
    urls: dict[str, str] = {}
    extra = getattr(msg, "model_extra", None) or {}
    for pid, url in (extra.get("product_urls") or {}).items():
        urls[str(pid)] = url
    for p in extra.get("products") or ():
        if isinstance(p, dict) and p.get("url"):
            urls[str(p.get("product_id"))] = p["url"]
    for pp in getattr(plan, "products", ()) or ():
        url = getattr(pp, "url", None)
        if url:
            urls.setdefault(pp.product.product_id, url)
    return urls


def _blocks(text: str) -> list[list[str]]:
    out: list[list[str]] = []
    cur: list[str] = []
    for line in (text or "").replace("\r\n", "\n").split("\n"):
        if line.strip():
            cur.append(line.rstrip())
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def parts_from_message(msg: Any, plan: Any, campaign: Any) -> EmailParts:
    """Structured parts of an assembled (or reviewer-edited) e-mail message."""
    products = [(pp.product.product_id, pp.product.name) for pp in getattr(plan, "products", ()) or ()]
    by_name = sorted(products, key=lambda x: -len(x[1]))  # "Rain Jacket Pro" before "Rain Jacket"
    why = {x.product_id: x.text.strip() for x in getattr(msg, "explanations", ()) or () if x.text.strip()}
    urls = _known_urls(msg, plan)

    def product_of(line: str) -> tuple[str, str] | None:
        s = line.strip().lstrip("-•* ").strip()
        for pid, name in by_name:
            if s.startswith(name) and s[len(name):len(name) + 1] in (":", ""):
                return pid, s[len(name) + 1:].strip()
        return None

    blocks: list[tuple[str, Any]] = []
    placed: set[str] = set()
    for lines in _blocks(msg.body):
        cards: list[dict[str, Any]] = []
        text: list[str] = []
        for line in lines:
            hit = product_of(line)
            if hit is not None and hit[0] not in placed:
                pid, detail = hit
                placed.add(pid)
                cards.append({"pid": pid, "detail": [detail], "url": None})
                continue
            if not cards:
                text.append(line)
                continue
            cur = cards[-1]
            if why.get(cur["pid"]) and why[cur["pid"]] in line:
                continue  # the explanation printed under its product in the text part: shown from data below
            cur["detail"].append(line.strip())
        if text:
            blocks.append(("text", "\n".join(text)))
        if cards:
            parts = []
            for c in cards:
                detail = " ".join(d for d in c["detail"] if d)
                url = urls.get(c["pid"])
                m = _URL.search(detail)
                if m:
                    url = url or m.group(0)
                    detail = (detail[:m.start()].rstrip(_TRAIL) + " " + detail[m.end():].lstrip(" )")).strip()
                name = dict(products)[c["pid"]]
                parts.append(ProductPart(c["pid"], name, detail.strip().rstrip(_TRAIL.strip()) or "",
                                         safe_url(url), why.get(c["pid"])))
            if blocks and blocks[-1][0] == "products":
                blocks[-1] = ("products", blocks[-1][1] + tuple(parts))
            else:
                blocks.append(("products", tuple(parts)))
    names = dict(products)
    unplaced = tuple((names.get(pid, pid), text) for pid, text in why.items() if pid not in placed)
    brand = campaign.brand
    signoff = ""
    if blocks and blocks[-1] == ("text", brand.signoff):
        signoff = brand.signoff
        blocks.pop()
    member = getattr(plan, "member", None)
    lang = (getattr(member, "locale", "") or "en").split("-")[0] or "en"
    return EmailParts(subject=msg.subject, preheader=msg.preheader, brand=brand.program, blocks=tuple(blocks),
                      cta_text=msg.cta_text, cta_url=msg.cta_url, footer=footer_parts(msg.footer),
                      signoff=signoff, unplaced_why=unplaced, lang=lang)


# ------------------------------------------------------------------------------------------ MJML


def _e(text: str) -> str:
    return html.escape(text or "", quote=True)


def _lines(text: str, esc: Any = _e) -> str:
    return "<br />".join(esc(x) for x in (text or "").split("\n"))


def _product_mjml(p: ProductPart, t: Theme, esc: Any = _e) -> str:
    url = safe_url(p.url)
    name = (f'<a href="{esc(url)}" style="color:{t.brand};text-decoration:underline;">{esc(p.name)}</a>'
            if url else esc(p.name))
    rows = [f'<mj-text padding="14px 16px 2px 16px" font-size="17px" font-weight="700" color="{t.text}">{name}'
            "</mj-text>"]
    if p.detail:
        rows.append(f'<mj-text padding="0 16px 10px 16px" font-size="15px" color="{t.text}">{esc(p.detail)}</mj-text>')
    if p.why:
        rows.append(f'<mj-text padding="4px 16px 0 16px" font-size="12px" font-weight="700" color="{t.brand}" '
                    f'letter-spacing="0.3px">{_e(WHY)}</mj-text>')
        rows.append(f'<mj-text padding="2px 16px 14px 16px" font-size="14px" line-height="20px" '
                    f'color="{t.text}">{_lines(p.why, esc)}</mj-text>')
    return (f'<mj-section padding="6px 24px" background-color="{t.card}">'
            f'<mj-column background-color="{t.tint}" border-left="4px solid {t.brand}" padding="0">'
            + "".join(rows) + "</mj-column></mj-section>")


def to_mjml(parts: EmailParts, theme: Theme = THEME, esc: Any = _e) -> str:
    """The message as MJML. ``esc`` escapes every member-specific text (``render_email`` passes one that
    puts a slot token in place of a plain one)."""
    t = theme
    text = (lambda body, pad="6px 24px": f'<mj-section padding="0" background-color="{t.card}"><mj-column>'
            f'<mj-text padding="{pad}">{body}</mj-text></mj-column></mj-section>')
    out = [f'<mjml lang="{esc(parts.lang)}"><mj-head>',
           f"<mj-title>{esc(parts.subject)}</mj-title>",
           f"<mj-preview>{esc(parts.preheader)}</mj-preview>" if parts.preheader else "",
           f'<mj-attributes><mj-all font-family="{t.font}" /><mj-text font-size="16px" line-height="24px" '
           f'color="{t.text}" /></mj-attributes>',
           f'</mj-head><mj-body background-color="{t.page}" width="600px">',
           '<mj-section padding="12px 0"><mj-column></mj-column></mj-section>',
           f'<mj-section padding="24px 0 0 0" background-color="{t.card}" border-radius="8px 8px 0 0"><mj-column>'
           f'<mj-text padding="4px 24px 12px 24px" font-size="15px" font-weight="700" letter-spacing="1px" '
           f'color="{t.brand}">{esc(parts.brand)}</mj-text></mj-column></mj-section>']
    def cta() -> str:
        if not (parts.cta_text and safe_url(parts.cta_url)):
            return ""
        return (f'<mj-section padding="8px 0 4px 0" background-color="{t.card}"><mj-column>'
                f'<mj-button href="{esc(safe_url(parts.cta_url))}" background-color="{t.brand}" color="#ffffff" '
                f'font-size="16px" font-weight="700" border-radius="6px" inner-padding="12px 22px" align="left" '
                f'padding="8px 24px">{esc(parts.cta_text)}</mj-button></mj-column></mj-section>')

    for kind, value in parts.blocks:
        if kind == "products":
            out.extend(_product_mjml(p, t, esc) for p in value)
        else:
            out.append(text(_lines(value, esc)))
    if parts.unplaced_why:
        out.append(text(f'<strong style="color:{t.brand};font-size:13px;">{_e(WHY)}</strong>', "12px 24px 0 24px"))
        for name, why in parts.unplaced_why:
            out.append(text(f"<strong>{esc(name)}</strong>: {_lines(why, esc)}", "4px 24px"))
    out.append(cta())
    if parts.signoff:
        out.append(text(esc(parts.signoff), "12px 24px 4px 24px"))
    links = []
    for p in parts.footer:
        if p.url:
            links.append(f'<a href="{esc(p.url)}" style="color:{t.muted};text-decoration:underline;">{esc(p.label)}</a>')
        else:
            links.append(esc(p.label))
    out.append(f'<mj-section padding="0 0 20px 0" background-color="{t.card}" border-radius="0 0 8px 8px">'
               f'<mj-column><mj-divider border-color="{t.rule}" border-width="1px" padding="16px 24px" />'
               f'<mj-text padding="0 24px" font-size="12px" line-height="19px" color="{t.muted}">'
               + "<br />".join(links) + "</mj-text></mj-column></mj-section>")
    out.append('<mj-section padding="12px 0"><mj-column></mj-column></mj-section></mj-body></mjml>')
    return "".join(out)


# ------------------------------------------------------------------------------------------ compiled layouts
#
# MRML takes ~0.35 ms a message, most of it the same table scaffolding for every member. ``render_email``
# compiles each layout once: the MJML with a slot token in place of every member-specific text, compiled by
# MRML; each member's escaped texts then go into the compiled HTML's slots. That gives MRML's own output only
# where MRML copies a text as it is, so a text goes into a slot only when it is plain: printable (no tabs,
# line breaks, no-break or other Unicode spaces, format characters: MRML rewrites those in places), no
# backslash and no combining mark (MRML writes the subject into an ``aria-label``, the language into ``lang``
# and the button's link with Rust's debug escaping, which doubles a backslash and writes a combining mark as
# ``\u{301}``). Any other text stays in the layout's MJML itself (that layout is then one member's: compiled as
# before). The compiled layout is used only if every token came out exactly as it went in
# (``tests/test_cpu_paths.py`` compares both paths on random parts).

_SLOT = "cgvslot{:05d}x"
_SLOT_RE = re.compile(r"cgvslot([0-9]{5})x")
_LAYOUTS: dict[str, tuple[Any, ...] | None] = {}
_MAX_LAYOUTS = 512


def _extends(c: str) -> bool:
    """A character Rust's ``char::escape_debug`` writes as ``\\u{...}`` though it is printable: a mark that
    extends the grapheme before it (Grapheme_Extend: the M categories plus a few modifiers)."""
    return unicodedata.category(c)[0] == "M" or c in "\uff9e\uff9f" or "\U0001f3fb" <= c <= "\U0001f3ff"


class _Slots:
    __slots__ = ("values", "clash")

    def __init__(self) -> None:
        self.values: list[str] = []
        self.clash = False  # a text that looks like a slot token: this message is compiled as before

    def __call__(self, text: str | None) -> str:
        v = _e(text)
        if "cgvslot" in v:
            self.clash = True
        if not v or not v.isprintable() or "\\" in v or len(self.values) >= 99999:
            return v
        if not v.isascii() and any(_extends(c) for c in v if c > "\x7f"):
            return v
        self.values.append(v)
        return _SLOT.format(len(self.values) - 1)


def _compile_layout(skeleton: str, n: int) -> tuple[Any, ...] | None:
    """MRML's HTML for a layout, split at its slots: (text, slot index, text, ...); None when a token did not
    come out of MRML exactly as it went in."""
    compiled = mjml.mjml2html(skeleton)
    pieces: list[Any] = []
    seen: set[int] = set()
    pos = 0
    for m in _SLOT_RE.finditer(compiled):
        pieces.append(compiled[pos:m.start()])
        i = int(m.group(1))
        if i >= n:
            return None
        pieces.append(i)
        seen.add(i)
        pos = m.end()
    pieces.append(compiled[pos:])
    if len(seen) != n or any("cgvslot" in p.lower() for p in pieces if isinstance(p, str)):
        return None
    return tuple(pieces)


def render_email(parts: EmailParts, theme: Theme = THEME) -> str:
    slots = _Slots()
    skeleton = to_mjml(parts, theme, slots)
    if slots.clash:
        return mjml.mjml2html(to_mjml(parts, theme))
    if not slots.values:
        return mjml.mjml2html(skeleton)
    try:
        pieces = _LAYOUTS[skeleton]
    except KeyError:
        pieces = _compile_layout(skeleton, len(slots.values))
        if len(_LAYOUTS) >= _MAX_LAYOUTS:
            _LAYOUTS.clear()
        _LAYOUTS[skeleton] = pieces
    if pieces is None:
        return mjml.mjml2html(to_mjml(parts, theme))
    values = slots.values
    return "".join([values[p] if p.__class__ is int else p for p in pieces])


def render_html(msg: Any, plan: Any, campaign: Any) -> str:
    """The HTML part of an e-mail message (see the module docstring)."""
    return render_email(parts_from_message(msg, plan, campaign))
