"""Clean messages stay clean under meaning-preserving rewrites (issue 16: false positives at first contact).

Every new labelled set so far brought 8-11% false positives, mostly from catalog names and formats
the matchers had never met (a catalog name with a comma, a fraction read as a date, "Rally" in a
name read as politics). This property takes the clean cases we have (each passing as written) and
rewrites them the way another catalog or another model would, consistently across catalog,
offers, recommendations, explanations and message, without changing what the message says under
the brief (shared/brief/):

- products renamed with realistic generated names (brand-like words, model numbers, sizes, packs,
  commas, colons, ampersands, apostrophes, parentheses, hyphens, ™/®, accented letters, and words
  that are ordinary English elsewhere: "Free", "Rally", "March", "Best", "Pro", "Guard", ...); a
  product is renamed only where the message names it by its full catalog name and no other word of
  its old name is left in the text (a shortened reference would no longer be that product, and a
  text may lean on a name's words: "merino"), or keeping the words that say what it is ("Glacier
  Insulated Bottle 32 oz" -> "Kestrel® Pro Insulated Bottle, 12 oz"), or extending it ("Back Nine
  Putting Mat" -> "Kestrel™ Back Nine Putting Mat (Large)": every shortened reference still holds);
  no sentence is pushed past the brief's 20 words; the text may write the name without ™/® and
  with typographic apostrophes;
- prices re-formatted within the brief's "$14, $14.00 and 14 dollars are the same" (never pushing a
  sentence past the brief's 20 words: "14 dollars" is a word more than "$14");
- month-name dates re-formatted ("March 23", "Mar. 23", "March 23rd");
- send date, offer windows and dated evidence moved together to a year with the same calendar
  (weekdays, "the second Sunday of May" and the text's "through March 23" keep their meaning);
- the member's first name changed (accented, hyphenated, names that are English words or months),
  or emptied where the name is only in a greeting (the greeting then has no name);
- categories renamed consistently (catalog, offers) where the text does not use their words.

The verdict must stay ``pass``. Examples are derandomized (a fixed sequence); set
``CLEAN_INVARIANCE_EXAMPLES`` and ``CLEAN_INVARIANCE_SEED`` to explore further.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import json
import os
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, note, seed, settings
from hypothesis import strategies as st

from contentgen.check import check_case
from contentgen.gates import load_rules

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
SOURCES = sorted((REPO / "tests" / "cases").glob("*.jsonl")) + [SHARED / "cases" / "public.jsonl"]

RULES = load_rules()


def _clean_cases() -> list[dict]:
    out = []
    for p in SOURCES:
        if not p.exists():
            continue
        for raw in p.read_text(encoding="utf-8").splitlines():
            if raw.strip():
                c = json.loads(raw)
                if c.get("expect", {}).get("verdict") == "pass":
                    out.append(c)
    return out


CASES = _clean_cases()

# --------------------------------------------------------------------------- generated names

#: brand-like words; several are ordinary English (or politics, religion, health) elsewhere
BRANDS = ["Northwind", "Kestrel", "Alder & Finch", "O'Malley's", "Brønd", "Zoë", "Müller", "Café Noir",
          "Rally", "March", "Free", "Best", "Pro", "Guard", "Cure", "Faith", "Pride", "Summit", "TrailMaster",
          "Peak&Pine", "ULTRA", "Liberty", "Patriot", "Grace", "Trinity", "Victory", "Crème",
          "Hale", "Vital", "Fortune", "Sunday", "Nova", "Bright", "Evergreen", "Red Fox", "Blue Ridge", "3M",
          "Dr. Bronner's", "iTrail", "St. Clair", "New Harbor", "Kestrel+"]
MODIFIERS = ["Pro", "Free", "Rally", "March", "Best", "Guard", "Classic", "Everyday", "Double-Wall", "Max",
             "Lite", "Air", "Original", "Plus", "Mini", "Ultra", "Select", "Prime", "Elite", "Signature",
             "Heritage", "Cure", "Pride", "Faith", "Senior", "Junior", "Tier", "Gold", "Rush", "Flash",
             "100% Cotton"]  # (a material before the noun: "Northwind 100% Cotton Tee")
NOUNS = ["Trail Runner", "Water Bottle", "Dot Pad", "Block Plane", "Throw Blanket", "Soy Candle", "Daypack",
         "Travel Mug", "Fleece Hoodie", "Headlamp", "Chef's Knife", "Yoga Mat", "Garden Trowel", "Tote",
         "Notebook", "Pour-Over Kettle", "Camp Chair", "Desk Lamp", "Cutting Board", "Bird Feeder", "Socks",
         "Tee", "Beanie", "Spatula", "Planter", "Frisbee", "Puzzle", "Skillet", "Duvet Cover", "Wrench"]
#: sizes, model numbers, packs, editions, as catalogs write them
SUFFIXES = ["", ", 80 sheets", " A5", " 12 oz", ", 12 oz", ' 3/8"', " No. 4", " 2-Pack", ", Set of 3",
            " (Large)", " X200", " Mk II", " 2.0", " V3", ": Travel Edition", " 10-inch", ' 1/2"', ' 16"',
            " 1.5L", " 750 ml", " 3-in-1", " No. 60 1/2", " 4/5", " 24 x 36 in", ", Size 9",
            " 1-2-3", " (2 pk)", " - Navy", " 5.11", " 7:30", " 30-Day", " XL", " 3 oz / 85 g", " #2",
            ", 2025 Edition", " Gen 2", " 12/24", " 1st Edition", " Model 3000", " 10x42", " 2x", " GT-2000 12",
            " XR-7", " 12-Hour", " – Navy", " C+E", " 24/7", " 1-Minute", " 4 Pack", " 3ft", " 5'"]
MARKS = ["", "", "", "™", "®"]

_WORD = re.compile(r"[\w'’]+")


class Choices:
    """What the rewrites choose: drawn by Hypothesis in the property (``data.draw``)."""

    def __init__(self, draw) -> None:
        self.draw = draw

    def pick(self, seq):
        return self.draw(st.sampled_from(seq))

    def flip(self) -> bool:
        return self.draw(st.booleans())

    def note(self, text: str) -> None:
        note(text)

    def event(self, text: str) -> None:
        event(text)


class SweepChoices(Choices):
    """Seeded choices in which one vocabulary word is always chosen where it may be (the sweep: every
    word of every list meets several cases, whatever the property's examples happened to pick)."""

    def __init__(self, rng: random.Random, forced: str) -> None:
        self.rng, self.forced = rng, forced
        self.notes: list[str] = []

    def pick(self, seq):
        return self.forced if self.forced in seq else self.rng.choice(list(seq))

    def flip(self) -> bool:
        return self.rng.random() < 0.75

    def note(self, text: str) -> None:
        self.notes.append(text)

    def event(self, text: str) -> None:
        pass


def _product_name(ch: Choices, ascii_only: bool) -> str:
    brand = ch.pick(BRANDS)
    mark = ch.pick(MARKS)
    mod = ch.pick([""] + MODIFIERS)
    noun = ch.pick(NOUNS)
    suffix = ch.pick(SUFFIXES)
    name = " ".join(w for w in (brand + mark, mod, noun) if w) + suffix
    if ascii_only:
        name = name.encode("ascii", "ignore").decode()
        name = name.strip() or "Northwind Tote"
    return name


FIRST_NAMES = ["Zoë", "José", "Mary-Kate", "O'Neil", "Ngozi", "Xu", "Ana", "Faith", "Hope", "Joy", "Grace",
               "June", "May", "April", "Will", "Sage", "Summer", "Christian", "Mercedes", "Siobhán", "François",
               "Bea", "Dawn", "Rich", "Chase", "Sunny", "Jesús", "Mohammed", "Precious", "Destiny", "Ái",
               "Austin", "Dallas", "Brooklyn", "Savannah", "Paris", "Phoenix", "Madison", "Eden", "Genesis",
               "Trinity", "Nevaeh", "Sky", "Rain", "Mary Ann", "Jo", "Al", "Liberty", "Justice", "Miracle"]
CATEGORIES = ["Home & Kitchen", "Bath, Body & Beauty", "Kids' Gear", "Tools: Hand Tools", "Camping (Outdoor)",
              "Pro Audio", "Crème Care", "Rally Sports", "Stationery", "Garden/Patio", "Men's Apparel",
              "Travel Accessories", "Pet Supplies", "Free-Weights", "Tea & Coffee"]


# --------------------------------------------------------------------------- the rewrites

def _texts(case: dict) -> list[tuple[dict, str]]:
    """(owner dict, key) of every customer-facing text of the message."""
    m = case["message"]
    out = [(m, k) for k in ("subject", "preheader", "body", "cta_text") if isinstance(m.get(k), str)]
    out += [(e, "text") for e in m.get("explanations", []) if isinstance(e.get("text"), str)]
    return out


def _all_text(case: dict) -> str:
    return "\n".join(o[k] for o, k in _texts(case))


def _bounded(s: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])" + re.escape(s) + r"(?![\w])")


def _evidence(case: dict) -> list[dict]:
    return [e for r in case.get("recommendations", []) for e in r.get("evidence", []) if isinstance(e, dict)]


_STOP = frozenset("the and for with of in on a an to by".split())


def _core(old: str) -> tuple[str, str]:
    """(kept, dropped) parts of a catalog name: the words between its first word (a brand, often) and
    its first number (a size or a count) are what the product is ("Glacier Insulated Bottle 32 oz"
    -> "Insulated Bottle"); a renamed product keeps them, so a text leaning on them stays true."""
    m = re.match(r"\s*\S+\s+(.*?)(?:(?:\s*[,:(\-]\s*|\s+)\d.*)?$", old)
    kept = (m.group(1) if m else "").strip(" ,:;-(")
    return kept, old


def _longest_sentence(text: str) -> int:
    """Words in the text's longest sentence, counted as brand.sentence-length counts them (the
    precondition that a longer name keeps every sentence within the brief's 20 words)."""
    from contentgen.gates import text as TX

    return max((len(TX.WORD_RE.findall(text, a, b)) for a, b in TX.split_sentences(text)), default=0)


def rename_products(case: dict, ch: Choices) -> None:
    catalog = case.get("catalog", [])
    ascii_only = case.get("channel") == "sms"
    names = [p["name"] for p in catalog]
    first = (case["member"].get("first_name") or "").lower()
    for p in catalog:
        old = p["name"]
        if not ch.flip():
            continue
        text = _all_text(case)
        rx = _bounded(old)
        if re.search(re.escape(old) + r"[\w]", text) or old.lower() in rx.sub(" ", text).lower():
            continue
        mode = ch.pick(["replace", "keep", "extend"])
        kept = _core(old)[0] if mode == "keep" else ""
        if mode == "keep" and (not kept or not re.fullmatch(r"[\w'’ &-]+", kept)):
            continue
        new = _product_name(ch, ascii_only)
        if kept:  # a brand, the old core, a size: "Kestrel® Pro Insulated Bottle, 12 oz"
            m = re.match(r"(.*?)\s*(" + "|".join(re.escape(n) for n in NOUNS) + r")(.*)$", new)
            assert m
            new = f"{m.group(1)} {kept}{m.group(3)}".strip()
        if mode == "extend":  # a brand before the old name, a size after it: every shortened reference holds
            brand = ch.pick(BRANDS) + ch.pick(MARKS) if ch.flip() else ""
            suffix = ch.pick(SUFFIXES)
            if ascii_only:
                brand, suffix = (x.encode("ascii", "ignore").decode() for x in (brand, suffix))
            bw = {w.lower() for w in _WORD.findall(brand)}
            if bw & ({w.lower() for n in names for w in _WORD.findall(n)} | set(_WORD.findall(text.lower()))):
                continue  # (a brand word the text or another name already has)
            new = f"{brand} {old}{suffix}".strip()
            if new == old or _longest_sentence(rx.sub(lambda _m: new, text)) > 20:
                continue  # (the brief's 20-word sentences: a longer name must not push one over)
        # with its full-name mentions gone, none of the old name's words (3+ letters, or numbers) that the
        # new name lacks may be left in the text, in any case: the text would lean on them
        rest = rx.sub(" ", text).lower()
        new_words = {w.lower() for w in _WORD.findall(new)}
        dropped = [w.lower() for w in _WORD.findall(old) if (len(w) >= 3 or w[0].isdigit())
                   and w.lower() not in _STOP and w.lower() not in new_words]
        if any(re.search(r"(?<![\w])" + re.escape(w[:-1] if w.endswith("s") and not w.endswith("ss") else w)
                         + r"(?:s|es)?(?![\w])", rest) for w in dropped):
            continue
        if (mode != "extend" and len(new.split()) > max(len(old.split()), 2)) or new in names or any(
                new.lower() in n.lower() or n.lower() in new.lower() for n in names if n != old):
            continue
        if first and first in new_words:
            continue  # (the member's name as a brand word: which one the text means is not defined)
        names[names.index(old)] = new
        p["name"] = new
        # the text may write the catalog name without its marks, with typographic apostrophes
        shown = new.replace("™", "").replace("®", "").replace("'", "’") if ch.flip() else new
        for o, k in _texts(case):
            o[k] = rx.sub(lambda _m: shown, o[k])
        for e in _evidence(case):
            if isinstance(e.get("detail"), str):
                e["detail"] = rx.sub(lambda _m: new, e["detail"])
        ch.note(f"renamed {old!r} -> {new!r}")
        ch.event("product renamed")


_PRICE = re.compile(r"\$(\d{1,3}(?:,\d{3})+|\d+)(\.\d\d)?(?![\d,]*\.?\d)")


def reformat_prices(case: dict, ch: Choices) -> None:
    style = ch.pick(["plain", "cents", "mixed", "dollars"])
    if style == "plain" and not ch.flip():
        return

    def fmt(m: re.Match[str]) -> str:
        whole, cents = m.group(1).replace(",", ""), m.group(2)
        if cents and cents != ".00":
            return m.group(0)
        n = int(whole)
        s = style if style != "mixed" else ("cents" if n % 2 else "plain")
        grouped = f"{n:,}" if n >= 1000 and ch.flip() else str(n)
        if s == "plain":
            return f"${grouped}"
        if s == "dollars":
            return f"{grouped} dollars"
        return f"${grouped}.00"

    for o, k in _texts(case):
        before = o[k]
        if "$" in o[k]:
            o[k] = _PRICE.sub(fmt, o[k])
        if "dollars" in o[k] and style != "dollars":
            o[k] = _DOLLARS.sub(lambda m: fmt(re.match(_PRICE, "$" + m.group(1))), o[k])
        if style == "dollars" and _longest_sentence(o[k]) > max(20, _longest_sentence(before)):
            o[k] = before  # ("$14" -> "14 dollars" is a word more: never past the brief's 20 in a sentence)


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]
_ABBR = {m: (m[:4] if m == "September" else m[:3]) + "." for m in _MONTHS if len(m) > 4}
_MONTH_DAY = re.compile(r"\b(" + "|".join(_MONTHS) + r")\.? (\d{1,2})(?:st|nd|rd|th)?\b(?![,:]? ?\d)")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 11 <= n % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def reformat_dates(case: dict, ch: Choices) -> None:
    """"March 23" as "Mar. 23" or "March 23rd" (the same date: the brief's dates must match, not their
    format); a date with a year or a time after it is left alone."""
    style = ch.pick(["as is", "abbreviated", "ordinal"])
    if style == "as is":
        return

    def fmt(m: re.Match[str]) -> str:
        month, day = m.group(1), int(m.group(2))
        if style == "abbreviated":
            return f"{_ABBR.get(month, month)} {day}"
        return f"{month} {_ordinal(day)}"

    for o, k in _texts(case):
        o[k] = _MONTH_DAY.sub(fmt, o[k])


_DOLLARS = re.compile(r"(?<![\w.,$])(\d{1,3}(?:,\d{3})+|\d+) dollars\b")
_ISO = re.compile(r"\b(\d{4})-(\d\d)-(\d\d)\b")
_YEAR = re.compile(r"\b(?:19|20)\d\d\b(?!-)")


def _calendar(y: int) -> tuple[int, bool]:
    return dt.date(y, 1, 1).weekday(), calendar.isleap(y)


def shift_years(case: dict, ch: Choices) -> None:
    """Move every date of the case to years with the same calendar (same weekdays, same leap day)."""
    years = {int(case["send_date"][:4])}
    for o in case.get("offers", []):
        for k in ("valid_from", "valid_until"):
            if isinstance(o.get(k), str) and _ISO.fullmatch(o[k]):
                years.add(int(o[k][:4]))
    text = _all_text(case)
    if any(str(y) in text for y in years) or _ISO.search(text):
        return  # a year in the text: leave it
    shifts = [d for d in range(-30, 31) if d and all(_calendar(y) == _calendar(y + d) for y in years)]
    if not shifts:
        return
    d = ch.pick(shifts)

    def mv(m: re.Match[str]) -> str:
        return f"{int(m.group(1)) + d:04d}-{m.group(2)}-{m.group(3)}"

    case["send_date"] = _ISO.sub(mv, case["send_date"])
    for o in case.get("offers", []):
        for k in ("valid_from", "valid_until"):
            if isinstance(o.get(k), str):
                o[k] = _ISO.sub(mv, o[k])
    for e in _evidence(case):
        if isinstance(e.get("detail"), str):
            e["detail"] = _YEAR.sub(lambda m: str(int(m.group()) + d), _ISO.sub(mv, e["detail"]))
    ch.note(f"years shifted by {d}")
    ch.event("years shifted")


_GREETING = re.compile(r"\A(Hi|Hello|Hey|Dear)( +)(\S[^,!\n]*?)([,!])(?=\n)")


def change_first_name(case: dict, ch: Choices) -> None:
    member = case["member"]
    old = (member.get("first_name") or "").strip()
    if not old or old != member.get("first_name"):
        return
    text = _all_text(case)
    catalog_words = {w.lower() for p in case.get("catalog", []) for w in _WORD.findall(p["name"])}
    if old.lower() in catalog_words:
        return
    rx = _bounded(old)
    body = case["message"]["body"]
    g = _GREETING.match(body)
    only_greeting = g is not None and g.group(3) == old and len(rx.findall(text)) == 1
    choices = FIRST_NAMES + ([""] if only_greeting else [])
    new = ch.pick(choices)
    if new and (new.lower() in text.lower() or new.lower() in catalog_words):
        return
    if not new:
        hello = ch.pick(["Hi there,", "Hello,", "Hello there,"])
        case["message"]["body"] = hello + body[g.end():]
    else:
        for o, k in _texts(case):
            o[k] = rx.sub(lambda _m: new, o[k])
    member["first_name"] = new
    ch.note(f"first name {old!r} -> {new!r}")
    ch.event(f"first name -> {new}")


def rename_categories(case: dict, ch: Choices) -> None:
    cats = sorted({p["category"] for p in case.get("catalog", []) if isinstance(p.get("category"), str)})
    if not cats or not ch.flip():
        return
    text = _all_text(case).lower()
    used = {c.lower() for c in cats}
    for old in cats:
        new = ch.pick(CATEGORIES)
        if new.lower() in used or new.lower() in text:
            continue
        # none of its words in the text (the text may lean on them: "fresh sheets" for category "sheets")
        if any(re.search(r"\b" + re.escape(w[:-1] if w.endswith("s") else w) + r"(?:s|es)?\b", text)
               for w in re.findall(r"\w{3,}", old.lower())):
            continue
        used.add(new.lower())
        for p in case["catalog"]:
            if p.get("category") == old:
                p["category"] = new
        for o in case.get("offers", []):
            if isinstance(o.get("applies_to_category"), str) and o["applies_to_category"].lower() == old.lower():
                o["applies_to_category"] = new
        ch.note(f"category {old!r} -> {new!r}")
        ch.event("category renamed")


#: the brief's length limits per channel (a rewrite that pushes a field over one is no longer clean)
_LIMITS = {"email": {"subject": 60, "preheader": 100}, "push": {"subject": 50, "body": 150},
           "sms": {"body": 160}, "inapp": {"subject": 60, "body": 250}}


def _fits(before: dict, after: dict) -> bool:
    lim = _LIMITS.get(after.get("channel", "email"), {})
    for k, n in lim.items():
        a, b = before["message"].get(k) or "", after["message"].get(k) or ""
        if len(b) > n and len(b) > len(a):
            return False
    return True


def _errors(findings) -> list[tuple]:
    return [(f.rule_id, f.severity, f.field, f.excerpt, f.message) for f in findings if f.severity != "info"]


def rewrite(case: dict, ch: Choices) -> None:
    rename_products(case, ch)
    reformat_prices(case, ch)
    reformat_dates(case, ch)
    shift_years(case, ch)
    change_first_name(case, ch)
    rename_categories(case, ch)


_SETTINGS = dict(max_examples=int(os.environ.get("CLEAN_INVARIANCE_EXAMPLES", "300")), deadline=None,
                 derandomize="CLEAN_INVARIANCE_SEED" not in os.environ, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.mark.skipif(not CASES, reason="no clean labelled cases")
@seed(int(os.environ.get("CLEAN_INVARIANCE_SEED", "0")))
@settings(**_SETTINGS)
@given(st.data())
def test_clean_cases_stay_clean_under_meaning_preserving_rewrites(data):
    original = data.draw(st.sampled_from(CASES), label="case")
    raw = {k: v for k, v in original.items() if k != "expect"}
    v0, _ = check_case(copy.deepcopy(raw), RULES)
    assume(v0 == "pass")  # (a clean case the gates get wrong as written is the labelled sets' business)
    case = copy.deepcopy(raw)
    note(f"case {case['case_id']}")
    rewrite(case, Choices(data.draw))
    assume(_fits(raw, case))
    v, findings = check_case(copy.deepcopy(case), RULES)
    if v != "pass":
        note(json.dumps(case, ensure_ascii=False))
    assert v == "pass", _errors(findings)


#: every word of every list, each forced into this many cases (where a rewrite can use it)
SWEEP_CASES = int(os.environ.get("CLEAN_INVARIANCE_SWEEP", "2"))
_VERDICTS: dict[str, str] = {}


def _passes_as_written(raw: dict) -> bool:
    v = _VERDICTS.get(raw["case_id"])
    if v is None:
        v = _VERDICTS[raw["case_id"]] = check_case(copy.deepcopy(raw), RULES)[0]
    return v == "pass"


@pytest.mark.skipif(not CASES, reason="no clean labelled cases")
def test_every_vocabulary_word_meets_clean_cases_and_they_stay_clean():
    """The property's examples are a sample: a word of the lists above may never be drawn. Here each
    one (product name parts, first names, categories) is forced into a few cases (seeded rotation)."""
    words = list(dict.fromkeys([*BRANDS, *MODIFIERS, *NOUNS, *SUFFIXES, *MARKS, *FIRST_NAMES, *CATEGORIES]))
    raws = [{k: v for k, v in c.items() if k != "expect"} for c in CASES]
    rng = random.Random(16)
    failures = []
    for i, word in enumerate(words):
        used = 0
        for j in range(40):
            raw = raws[(i * 7919 + j * 104729) % len(raws)]
            case = copy.deepcopy(raw)
            ch = SweepChoices(rng, word)
            rewrite(case, ch)
            if word.strip() and word.strip() not in json.dumps(case, ensure_ascii=False):
                continue  # no rewrite could use the word here
            if not _fits(raw, case) or not _passes_as_written(raw):
                continue
            used += 1
            v, findings = check_case(copy.deepcopy(case), RULES)
            if v != "pass":
                failures.append((word, case["case_id"], ch.notes, _errors(findings)))
            if used >= SWEEP_CASES:
                break
    assert not failures, "\n".join(map(repr, failures[:20])) + f"\n({len(failures)} in all)"


# --------------------------------------------------------------------------- focused examples

#: catalog names whose punctuation the name matcher once dropped (each was then "not a product in
#: the catalog", or its size or model number read as a date, a time or a superlative)
PUNCTUATED_NAMES = ["O'Malley's Free Dot Pad, Size 9", "Best® Plus Travel Mug V3", "Best Pro Pour-Over Kettle #2",
                    'Best™ Camp Chair 1/2"', "Free Tote 4/5", "Kestrel Pro Headlamp 7:30", "Zoë Guard Puzzle #2",
                    "Northwind Tote (Large)", "Victory Spatula 5.11", "Brønd Mini Tee 2.0", "Müller Socks",
                    "Crème Tote 3 oz / 85 g", "Northwind Tee 100% Cotton", "Rhodia Dot Pad A5, 80 sheets",
                    "No. 60 1/2 Block Plane", "Peak&Pine Daypack", "Summit Mug: Travel Edition", "Éclair Mold, Set of 3"]


@pytest.mark.parametrize("name", PUNCTUATED_NAMES)
def test_a_catalog_name_is_matched_as_itself_whatever_its_punctuation(name):
    from contentgen.gates.checks import catalog as C
    from contentgen.models import Product

    words = C.Words(openers=frozenset(), non_products=frozenset(), connectors=frozenset({"of", "and", "&"}),
                    greeting=re.compile("Hi"))
    idx = C.build_index({"P1": Product(product_id="P1", name=name, category="x", price=14.0, in_stock=True,
                                       claims=[])}, words)
    for text in (f"Meet the {name} today.", f"{name} ($14)", f"New: {name.replace(chr(39), '’')}."):
        got = [text[a:b] for a, b, _ in C._exact_mentions(idx, text)]
        assert got == [name.replace("'", "’") if "’" in text else name], (text, got)


def _template(name: str | None = None, first_name: str | None = None, line: str | None = None) -> dict:
    """A clean tier 1 case (one product, one offer ending May 25), its product renamed ``name``, its
    member ``first_name``, with ``line`` added to the body."""
    case = copy.deepcopy(next(c for c in CASES if c["case_id"] == "fa-pass-golf-t1-bill-putting-mat"))
    case.pop("expect")
    m = case["message"]
    m["preheader"] = "10% off a putting mat, plus free shipping on orders over $49."
    if name:
        old = case["catalog"][0]["name"]
        case["catalog"][0]["name"] = name
        m["body"] = m["body"].replace(old, name)
    if first_name:
        case["member"]["first_name"] = first_name
        m["body"] = m["body"].replace("Hi Bill,", f"Hi {first_name},")
    if line:
        m["body"] = m["body"].replace("\n\n— The", f"\n\n{line}\n\n— The")
    return case


@pytest.mark.skipif(not any(c["case_id"] == "fa-pass-golf-t1-bill-putting-mat" for c in CASES),
                    reason="template case not found")
def test_the_members_first_name_is_theirs_not_an_inference():
    assert check_case(_template(), RULES)[0] == "pass"
    for first in ("Christian", "Faith", "Grace", "Mercedes", "Mary-Kate"):
        v, f = check_case(_template(first_name=first), RULES)
        assert v == "pass", (first, _errors(f))
    # the same word that is not the member's name is still read for what it says
    v, f = check_case(_template(first_name="Dana", line="It's a hit with Christian families."), RULES)
    assert "compliance.sensitive-identity" in {x.rule_id for x in f}, _errors(f)
    v, f = check_case(_template(first_name="Christian", line="It's a hit with christian families."), RULES)
    assert "compliance.sensitive-identity" in {x.rule_id for x in f}, _errors(f)


@pytest.mark.skipif(not any(c["case_id"] == "fa-pass-golf-t1-bill-putting-mat" for c in CASES),
                    reason="template case not found")
def test_a_date_or_time_inside_a_catalog_name_is_the_products():
    for name in ("Back Nine Putting Mat 4/5", "Back Nine Putting Mat 12/24", "Back Nine Putting Mat 7:30",
                 "Back Nine Putting Mat 1:48"):
        v, f = check_case(_template(name=name), RULES)
        assert v == "pass", (name, _errors(f))
    # outside the name, the same figures are a date of the member's behaviour, an offer date, a time
    for line, rule in (("You bought one on 4/5.", "brand.value-first-dates"),
                       ("The offer ends 12/24.", "facts.offer-dates"),
                       ("You looked at it at 7:30 pm.", "compliance.creepy-time")):
        v, f = check_case(_template(name="Back Nine Putting Mat 4/5", line=line), RULES)
        assert rule in {x.rule_id for x in f}, (line, _errors(f))


def _case(case_id: str) -> dict:
    case = copy.deepcopy(next(c for c in CASES if c["case_id"] == case_id))
    case.pop("expect")
    return case


@pytest.mark.skipif(not any(c["case_id"] == "sc-014" for c in CASES), reason="case sc-014 not found")
def test_a_names_kind_word_is_a_kind_whatever_size_or_model_follows():
    """'your Dobsonian' (a telescope the member owns) names no product, whether the catalog's
    Dobsonian is 'Nightwatch 8-inch Dobsonian' or that with a size, model or variant after it."""
    for name in ("Nightwatch 8-inch Dobsonian", "Nightwatch 8-inch Dobsonian XL", "Nightwatch 8-inch Dobsonian 7:30",
                 "Nightwatch 8-inch Dobsonian Gen 2", "Nightwatch 8-inch Dobsonian Mk II",
                 "Nightwatch Dobsonian, 8-inch", "Nightwatch Dobsonian (8-inch)"):
        case = _case("sc-014")
        next(p for p in case["catalog"] if p["product_id"] == "AS-4403")["name"] = name
        v, f = check_case(case, RULES)
        assert v == "pass", (name, _errors(f))


@pytest.mark.skipif(not any(c["case_id"] == "rt-clean-B12-candle-ends-tomorrow" for c in CASES),
                    reason="case rt-clean-B12-candle-ends-tomorrow not found")
def test_a_size_or_count_alone_names_no_product():
    """'2x points through June 19' is the candle's offer, not a mention of a hand cream whose catalog
    name ends with '2x' (a size, count or model number alone is no product's name)."""
    for name in ("Velvet 24H Hand Cream 2x", "2x Magnifier", "Velvet Hand Cream, 2x"):
        case = _case("rt-clean-B12-candle-ends-tomorrow")
        next(p for p in case["catalog"] if p["product_id"] == "B200")["name"] = name
        v, f = check_case(case, RULES)
        assert v == "pass", (name, _errors(f))


def _renamed(case_id: str, old: str, new: str) -> dict:
    case = _case(case_id)
    next(p for p in case["catalog"] if p["name"] == old)["name"] = new
    for o, k in _texts(case):
        o[k] = o[k].replace(old, new)
    return case


@pytest.mark.skipif(not any(c["case_id"] == "rt3-clean-tech-nova-caps-brand" for c in CASES),
                    reason="case rt3-clean-tech-nova-caps-brand not found")
def test_a_letter_alone_names_no_product():
    """'USB-C fast charging' is about the earbuds the text names, not a product whose name has 'C'."""
    case = _renamed("rt3-clean-tech-nova-caps-brand", "Quietline Wireless Earbuds", "Quietline Wireless Earbuds C+E")
    v, f = check_case(case, RULES)
    assert v == "pass", _errors(f)


@pytest.mark.skipif(not any(c["case_id"] == "sd-hb-003" for c in CASES), reason="case sd-hb-003 not found")
def test_a_place_like_brand_opening_a_catalog_name_is_no_location():
    old = "Nielsen-Massey Madagascar Vanilla Bean Paste, 4 oz"
    case = _renamed("sd-hb-003", old, "New Harbor " + old)
    v, f = check_case(case, RULES)
    assert v == "pass", _errors(f)
    # the same words that are no product's are still a place
    case["message"]["body"] = case["message"]["body"].replace("\n\n— The", "\n\nIt's a favorite in New Harbor.\n\n— The")
    v, f = check_case(case, RULES)
    assert "compliance.location" in {x.rule_id for x in f}, _errors(f)


@pytest.mark.skipif(not any(c["case_id"] == "rt2-clean-storage-usual-t2" for c in CASES),
                    reason="case rt2-clean-storage-usual-t2 not found")
def test_a_day_name_in_the_plural_is_no_product_named_after_the_day():
    """'busy Sundays' is the day, also where another catalog product is named 'Sunday Orbit Blender'."""
    case = _renamed("rt2-clean-storage-usual-t2", "Orbit Blender Pro", "Sunday Orbit Blender Pro")
    v, f = check_case(case, RULES)
    assert v == "pass", _errors(f)


@pytest.mark.skipif(not any(c["case_id"] == "sc-014" for c in CASES), reason="case sc-014 not found")
def test_a_names_kind_word_is_found_before_units_and_codes():
    for name in ("Nightwatch 8-inch Dobsonian 4 Pack", "Nightwatch 8-inch Dobsonian C+E",
                 "Nightwatch 8-inch Dobsonian 2 ct"):
        case = _case("sc-014")
        next(p for p in case["catalog"] if p["product_id"] == "AS-4403")["name"] = name
        v, f = check_case(case, RULES)
        assert v == "pass", (name, _errors(f))


def test_an_ordinal_date_ends_its_sentence():
    """'through August 31st. It's $249.' is two sentences, as 'through August 31. It's $249.' is
    (the 'st' of '31st' is no 'St.' abbreviation); a long merged sentence failed brand.sentence-length."""
    from contentgen.gates import text as TX

    for day in ("31", "31st", "2nd", "3rd", "24th"):
        t = f"Members earn double points through August {day}. It's $249 and ships free."
        assert len(TX.split_sentences(t)) == 2, (day, TX.split_sentences(t))
    assert len(TX.split_sentences("Meet us at St. Clair Park. It's open.")) == 2
    assert len(TX.split_sentences("It's near Dr. Lee's shop.")) == 1


@pytest.mark.skipif(not any(c["case_id"] == "sd-ww-022" for c in CASES), reason="case sd-ww-022 not found")
def test_a_percentage_inside_a_catalog_name_is_the_products():
    old = "Shinwa Stainless Steel Square, 15 cm"
    for new in (old + " 100% Steel", "Trinity " + old + " 100% Steel"):
        v, f = check_case(_renamed("sd-ww-022", old, new), RULES)
        assert v == "pass", (new, _errors(f))
