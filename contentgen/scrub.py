"""What member- or recommender-supplied text may carry into a prompt or a mail header.

One place for three jobs:

- ``normalize_name``: a first name as it may appear in a greeting or a subject
  (NFKC; control, bidi, zero-width and other invisible characters removed;
  all-caps names title-cased; anything that is not a name is dropped, with the
  reason, so the member is greeted with "Hi there,").
- ``scrub_pii``: free text (stated preferences, evidence details, repair
  instructions) without e-mail addresses, links, phone, card and account
  numbers, street addresses, postal codes and other people's names.
- ``soften_detail``: an evidence detail as inference, not observation: counts,
  frequencies, durations, dates and times of day are taken out.

``header_safe`` makes any text safe for a one-line field (subject, preheader,
push title): no CR, LF, NUL or other control, bidi or zero-width character.

Every function is pure; nothing here is ever a template or a regex pattern
built from member text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# ----------------------------------------------------------------------------- characters

#: categories that never belong in text we pass on: controls (Cc: NUL, CR, LF, ESC...), format characters
#: (Cf: bidi overrides U+202A-E and isolates U+2066-9, zero-width space/joiners, BOM, soft hyphen),
#: private use, surrogates and unassigned code points
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})
_LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
#: at most this many combining marks on one base character ("Zalgo" text stacks dozens)
_MAX_MARKS = 2


def clean_chars(text: str, *, keep_newlines: bool = False, nfkc: bool = True) -> str:
    """NFKC, invisible characters dropped, line breaks and tabs to spaces (or ``\\n``), stacked marks cut."""
    if text.isascii() and text.isprintable():  # the common case: nothing to normalize or drop
        return text
    text = text.replace("\r\n", "\n")
    if nfkc:
        text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    marks = 0
    for ch in text:
        if ch in _LINE_BREAKS:
            out.append("\n" if keep_newlines else " ")
            marks = 0
            continue
        cat = unicodedata.category(ch)
        if cat[0] == "M":
            marks += 1
            if marks > _MAX_MARKS:
                continue
        else:
            marks = 0
        if ch == "\t" or cat == "Zs":
            out.append(" ")
        elif cat not in _DROP_CATEGORIES:
            out.append(ch)
    return "".join(out)


def has_invisible(text: str) -> bool:
    """True when the text holds a control, format (bidi, zero-width), private-use or unassigned character,
    or a line or paragraph separator."""
    return any(unicodedata.category(ch) in _DROP_CATEGORIES or ch in _LINE_BREAKS for ch in text)


def header_safe(text: str) -> str:
    """One line, fit for a mail header: no CR/LF/NUL, bidi or zero-width characters; spaces collapsed."""
    return " ".join(clean_chars(text, nfkc=False).split())


# ----------------------------------------------------------------------------- names

MAX_NAME_CHARS = 40
_PLAIN_NAME = re.compile(r"[A-Za-z]{1,40}")
_NAME_PUNCT = frozenset(" -\u2010'\u2019\u02bc.")
#: decoration people put in name fields: emoji (So), skin-tone modifiers (Sk), variation selectors
_DECORATION = frozenset({"So", "Sk"})


def _is_decoration(ch: str) -> bool:
    return unicodedata.category(ch) in _DECORATION or "\ufe00" <= ch <= "\ufe0f"


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"{ch!r} ({name.lower()})" if name else repr(ch)


def normalize_name(raw: str) -> tuple[str, str | None]:
    """The first name to use, and why the given one was dropped (None when it was kept or was empty).

    "MARIA" -> "Maria"; "Ann\\r\\nX-Injected: yes" -> "" (a colon is not part of a name);
    "Jo\\1" -> ""; "Zoë\\u200b" -> "Zoë"; "Ana 🌸" -> "Ana".
    """
    if _PLAIN_NAME.fullmatch(raw):  # the common case: a plain ASCII name
        return (raw.title() if raw.isupper() and len(raw) > 1 else raw), None
    s = clean_chars(raw)
    s = "".join(ch for ch in s if not _is_decoration(ch))
    s = " ".join(s.split())
    if not s:
        return "", ("only invisible or control characters" if raw.strip() else None)
    if len(s) > MAX_NAME_CHARS:
        return "", f"longer than {MAX_NAME_CHARS} characters"
    for ch in s:
        if ch in _NAME_PUNCT:
            continue
        if unicodedata.category(ch)[0] not in "LM":
            return "", f"contains {_describe(ch)}, which is not part of a name"
    if not any(ch.isalpha() for ch in s):
        return "", "has no letters"
    if sum(ch.isupper() for ch in s) >= 2 and s == s.upper():
        s = s.lower().title()  # "MARY-KATE" -> "Mary-Kate", "O'NEIL" -> "O'Neil"
    return s, None


def own_names(first_name: str, email: str = "") -> tuple[str, ...]:
    """The member's own name words: the first name and the name-like parts of the e-mail's local part
    ("nia.okafor12@..." -> "Nia", "nia", "okafor")."""
    out = []
    for w in re.split(r"[\s-]+", first_name):
        if len(w) >= 2:
            out.append(w)
    local = email.split("@", 1)[0] if "@" in email else ""
    for w in re.split(r"[^A-Za-z]+", local):
        if len(w) >= 3:
            out.append(w)
    return tuple(dict.fromkeys(out))


# ----------------------------------------------------------------------------- personal data

_I = re.I
_TLD = r"(?:com|net|org|edu|gov|mil|io|co|ca|us|uk|de|fr|info|biz|me|ai|app|dev|email|mail)"
_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]++@[\w-]+(?:\.[\w-]+)+"
    r"|(?<![\w+-])[\w+-]++(?:\s*(?:\.|\(dot\)|\[dot\]|\bdot\b)\s*[\w+-]+)*\s*(?:\(at\)|\[at\]|\{at\}|\bat\b)\s*[\w-]+(?:\s*(?:\.|\(dot\)|\[dot\]|\bdot\b)\s*[\w-]+)*?"
    r"\s*(?:\.|\(dot\)|\[dot\]|\bdot\b)\s*" + _TLD + r"\b", _I)
_AT_WORD = re.compile(r"\bat\b|[(\[{]at[)\]}]", re.I)
_HAS_DIGIT = re.compile(r"\d")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", _I)
#: IBAN-like account numbers: country code, check digits, 11-30 alphanumerics
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
#: a run of digits with single separators: phone, card, account, social security numbers (7+ digits)
_DIGIT_RUN = re.compile(r"(?<![\w.,$€£])\+?\(?\d(?:\d|[ ().-]{1,2}(?=[\d(])){5,}\d\)?(?![\w])")
_MIN_RUN_DIGITS = 7
#: "account #12345", "card ending in 4417", "member no. 8812"
_CUED_NUMBER = re.compile(
    r"\b(?:acct|account|card|member(?:ship)?|customer|loyalty|order|routing|sort code|iban|ssn|sin|"
    r"social security|passport|licen[cs]e|policy|phone|mobile|cell|tel|fax)\b[\w .:#-]{0,20}?"
    r"(?:(?:ending|ends)\s+(?:in\s+|with\s+)?|last\s+(?:four|4)\s+(?:digits\s+)?(?:are\s+|is\s+)?|"
    r"(?:no\.?|number|num|#|id)\s*[:#]?\s*)?#?\s*[A-Z]{0,3}\d[\d -]{2,}\d\b", _I)
_STREET_SUFFIX = (r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|way|"
                  r"terrace|ter|circle|cir|highway|hwy|parkway|pkwy|square|sq|trail|trl|crescent|cres|close|"
                  r"row|alley|route|rte|plaza|pike|loop)")
_UNIT = r"(?:,?\s*(?:apt|apartment|unit|suite|ste|floor|fl|#)\.?\s*#?\s*[\w-]{1,6})?"
_STREET = re.compile(
    r"\b\d{1,6}[A-Za-z]?\s+(?:[NSEW]\.?\s+|(?:north|south|east|west)\s+)?(?:[A-Za-z][\w'.-]*\s+){1,4}"
    + _STREET_SUFFIX + r"\b\.?" + _UNIT
    + r"(?:,\s*[A-Z][A-Za-z.' -]{1,30}?(?=,|\s+[A-Z]{2}\b|\s+\d{5}|$|[;.]))?(?:,?\s*[A-Z]{2}\b)?(?:,?\s*\d{5}(?:-\d{4})?)?",
    _I)
_PO_BOX = re.compile(r"\b(?:p\.?\s*o\.?\s*box|post office box)\s*#?\s*\d+\b", _I)
_ADDRESS_CUE = re.compile(
    r"\b(?:i live (?:at|on)|live at|my address is|address(?: is)?:|ship(?:ping)? (?:it |them )?to|"
    r"deliver(?:y)? (?:it |them )?to|send (?:it |them )?to)\s+[^;,.\n]*\d[^;.\n]*", _I)
_ZIP = re.compile(r"\b\d{5}(?:-\d{4})?\b")
_CA_POSTCODE = re.compile(r"\b[ABCEGHJ-NPRSTVXY]\d[A-Z][ -]?\d[A-Z]\d\b", _I)

# other people's names
_CAP = r"[A-Z][a-z\u00e0-\u00ff]+(?:[-'\u2019][A-Z]?[a-z\u00e0-\u00ff]+)?"
_CAPS = _CAP + r"(?:\s+" + _CAP + r"){0,2}"
_HONORIFIC = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Dame|Rev|Fr|Madam|Mme|Mlle|Herr|Frau)\.?\s+" + _CAPS)
_RELATION = re.compile(
    r"\b((?:[Mm]y|[Oo]ur|[Hh]is|[Hh]er|[Tt]heir)\s+(?:(?:little|older|younger|big|best|twin|new|late|dear)\s+)?"
    r"(?:wife|husband|partner|spouse|son|daughter|sister|brother|mom|mum|mother|dad|father|parents?|"
    r"friend|girlfriend|boyfriend|fianc[ée]e?|boss|manager|coworker|co-worker|colleague|niece|nephew|aunt|"
    r"uncle|grandma|grandmother|grandpa|grandfather|granddaughter|grandson|cousin|kid|child|baby|neighbou?r|"
    r"roommate|flatmate|teacher|coach|godson|goddaughter|godchild|stepson|stepdaughter|stepmom|stepdad|"
    r"(?:mother|father|sister|brother|son|daughter)-in-law|in-laws|bestie|bff|nanny|caregiver|doctor)s?)"
    r"(?:\s*,)?(?:\s+(?:named|called))?\s+(" + _CAPS + r")(?:'s|\u2019s)?")
_INTRO = re.compile(r"\b((?:[Nn]amed|[Cc]alled|[Nn]ame is|[Nn]ame's|I'm|I am|[Tt]his is|[Ss]igned|[Aa]sk for|"
                    r"[Aa]ttn:?|[Ff]rom:|[Tt]o:|[Cc]/[Oo]|[Cc]are of|[Rr]egards,?|[Tt]hanks,?|[Cc]heers,?|[Ll]ove,|[Xx]oxo,?)\s+)("
                    + _CAPS + r")")
#: "for Emma", "to Leo and Ava": a capitalized word after for/to/with is a name when it ends the clause,
#: is possessive or is followed by another capitalized word or "and"/"or"
_FOR_NAME = re.compile(r"\b((?:for|to|with|from|by)\s+)(" + _CAPS + r")(?=\s*$|\s*[,.;:!?)]|'s|\u2019s|\s+(?:and|or|&)\b)")
_POSSESSIVE = re.compile(r"\b(" + _CAPS + r")(?:'s|\u2019s)(?!\w)")
_PAIR = re.compile(r"(?<=[a-z,)]\s)(" + _CAP + r"\s+" + _CAP + r"(?:\s+" + _CAP + r")?)\b")
_NAME_START = re.compile(r"(?:^|(?<=[.!?;:\n]\s)|(?<=\n))(" + _CAP + r")(?=\s+" + _CAP + r"\b)")

#: capitalized words that are not people: calendar, holidays, places people say, the program, openers
_NOT_NAMES = frozenset("""
i i'm i've i'd i'll a an the my our your his her their this that these those it its we you he she they me us
and or but for to with from by of in on at as so if not no yes please thanks thank hi hello dear
january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday weekend weekends
spring summer fall autumn winter season holiday holidays christmas xmas easter thanksgiving halloween
hanukkah chanukah diwali eid ramadan kwanzaa passover valentine valentines mother mothers father fathers
day days eve new year years black cyber boxing labor labour memorial independence canada canadian
men women kids children boys girls baby babies unisex adult adults teen teens toddler toddlers
athenaplus athena plus rewards member members team store online shop
enthusiasts routine buyers bargain hunters lapsed vip vips gift gifts givers browsers
north south east west northern southern eastern western
spf upf xs s m l xl xxl usa us uk eu
""".split())
_COMMON_GIVEN_NAMES = frozenset("""
aaron abigail adam addison adrian aidan aiden alan albert alex alexa alexander alexandra alexis alice alicia
allison alyssa amanda amelia amy ana andrea andrew angela anna anne anthony antonio ariana arthur ashley
audrey ava avery barbara benjamin beth betty beverly blake brandon brenda brian brianna brittany bruce bryan
caleb cameron camila carl carlos carol caroline catherine charles charlie chloe chris christina christine
christopher claire cody colin connor cynthia daniel danielle david deborah debra denise dennis derek diana
diane donald donna dorothy douglas dylan edward eleanor elena elijah elizabeth ella ellie emily emma eric
erica erin ethan evelyn frances frank gabriel gabriella gary george gerald gloria gregory hailey hannah harold
harper harry heather helen henry ian isaac isabella isaiah jack jackson jacob jacqueline jake james jamie
janet janice jason jayden jeffrey jennifer jeremy jesse jessica joan joe john johnny jonathan jose joseph
joshua joyce juan judith judy julia julian julie justin karen katherine kathleen kathryn kayla keith kelly
kenneth kevin kimberly kyle laura lauren leah leo levi liam lillian lily linda lisa lori louis lucas lucy luke
margaret maria marie marilyn martha mary mason matthew megan melissa mia michael michelle mila natalie nathan
nicholas nicole noah nora olivia owen pamela patricia patrick paul peter philip rachel ralph raymond rebecca
richard riley robert roger ronald ruth ryan samantha samuel sandra sara sarah scarlett scott sean sebastian
sharon shirley sofia sophia sophie stephanie stephen steven susan teresa theresa thomas timothy tyler vincent
walter wayne william wyatt zachary zoe zoey priya arjun mei wei hiroshi yuki nguyen linh mateo valentina
santiago diego ximena alejandro camille aisha omar fatima yusuf kwame amara chidi ngozi tariq leila dmitri
anya sven ingrid siobhan niamh declan malia rohan ananya tenzin marisol tomas
""".split())

_NAME_WORD = "someone"
_AFTER_NAME_WORD = re.compile(_NAME_WORD + r"\s+(" + _CAP + r")\b")
_CAP_RE = re.compile(_CAP)


@dataclass(frozen=True)
class Scrubbed:
    text: str
    removed: tuple[str, ...]  # kinds found, in order: "email", "street address", "name", ...


def _bare(word: str) -> str:
    word = word.lower()
    return word[:-2] if word.endswith(("'s", "\u2019s")) else word


def _not_name(words: str) -> bool:
    """True when a capitalized run is a calendar word, a holiday, the program, a segment... not a person."""
    parts = [_bare(w) for w in words.split()]
    return parts[0] in _NOT_NAMES or all(p in _NOT_NAMES for p in parts)


def _given(word: str) -> bool:
    return word.lower() in _COMMON_GIVEN_NAMES


@lru_cache(maxsize=8192)
def _own_word_re(w: str) -> re.Pattern[str]:
    # members' own name words: thousands of distinct patterns, more than the re module's cache of 512 keeps
    return re.compile(r"(?<!\w)" + re.escape(w) + r"(?!\w)", re.I)


def _scrub_names(text: str, own: Iterable[str], found: list[str]) -> str:
    def hit() -> None:
        found.append("name")

    def relation(m: re.Match[str]) -> str:
        if _not_name(m.group(2)):
            return m.group(0)
        hit()
        return m.group(1)

    def replace_group2(m: re.Match[str]) -> str:
        if _not_name(m.group(2)):
            return m.group(0)
        hit()
        return m.group(1) + _NAME_WORD

    def honorific(m: re.Match[str]) -> str:
        hit()
        return _NAME_WORD

    def possessive(m: re.Match[str]) -> str:
        # "Emma's", "Emily Watson's", or any capitalized word's mid-sentence ("for Dana's birthday");
        # a sentence may open with a capitalized possessive that is not a name ("Today's", "Men's")
        words = m.group(1)
        mid_sentence = m.start() > 0 and not re.search(r"(?:^|[.!?;:\n])\s*$", m.string[:m.start()])
        if _not_name(words) or not (len(words.split()) > 1 or _given(words) or mid_sentence):
            return m.group(0)
        hit()
        return _NAME_WORD + "'s"

    def pair(m: re.Match[str]) -> str:
        words = m.group(1).split()
        if any(w.lower() in _NOT_NAMES for w in words):
            return m.group(0)
        hit()
        return _NAME_WORD

    def start_pair(m: re.Match[str]) -> str:
        if not _given(m.group(1)):
            return m.group(0)
        hit()
        return _NAME_WORD

    text = _HONORIFIC.sub(honorific, text)
    text = _RELATION.sub(relation, text)
    text = _INTRO.sub(replace_group2, text)
    text = _FOR_NAME.sub(replace_group2, text)
    text = _POSSESSIVE.sub(possessive, text)
    text = _PAIR.sub(pair, text)
    # "Emily Watson wants...": a common given name opening a sentence, followed by a surname
    text = _NAME_START.sub(start_pair, text)
    # the surname left after a replaced given name ("someone Watson")
    text = _AFTER_NAME_WORD.sub(lambda m: m.group(0) if m.group(1).lower() in _NOT_NAMES else _NAME_WORD, text)

    # a common given name anywhere, capitalized ("Emma loves hiking", "gifts Emma likes")
    def given(m: re.Match[str]) -> str:
        if not _given(m.group(0)):
            return m.group(0)
        hit()
        return _NAME_WORD
    text = _CAP_RE.sub(given, text)
    # the member's own name words (first name, surname from the e-mail), where capitalized
    for w in own:
        if len(w) < 2:
            continue
        rx = _own_word_re(w)

        def own_hit(m: re.Match[str]) -> str:
            if not m.group(0)[:1].isupper():
                return m.group(0)
            hit()
            return _NAME_WORD
        text = rx.sub(own_hit, text)
    return text


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"\s+([,.;:!?)])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"\b(someone)(?:\s+(?:and|or|&)\s+someone)+\b", r"\1", text)
    text = re.sub(r"\b(someone's)(?:\s+someone's)+", r"\1", text)
    text = re.sub(r"\bsomeone(?:\s+someone)+\b", "someone", text)
    return text.strip(" ,;:-")


def _digit_run(repl):
    def f(m: re.Match[str]) -> str:
        if sum(ch.isdigit() for ch in m.group(0)) < _MIN_RUN_DIGITS:
            return m.group(0)
        return repl(m)
    return f


def scrub_pii(text: str, *, own: Iterable[str] = ()) -> Scrubbed:
    """Take personal data out of free text; ``own``: the member's own name words (see ``own_names``)."""
    found: list[str] = []

    def drop(kind: str, repl: str = "") -> object:
        def f(m: re.Match[str]) -> str:
            found.append(kind)
            return repl
        return f

    # each family only where it can match (most notes have no digit, no '@' and no link)
    low = text.lower()
    if "http" in low or "www." in low:
        text = _URL.sub(drop("link"), text)
    if "@" in text or _AT_WORD.search(text):
        text = _EMAIL.sub(drop("email"), text)
    if _HAS_DIGIT.search(text):
        text = _ADDRESS_CUE.sub(drop("street address"), text)
        text = _PO_BOX.sub(drop("street address"), text)
        text = _STREET.sub(drop("street address"), text)
        text = _IBAN.sub(drop("account number"), text)
        text = _CUED_NUMBER.sub(drop("phone, card or account number"), text)
        text = _DIGIT_RUN.sub(_digit_run(drop("phone, card or account number")), text)
        text = _CA_POSTCODE.sub(drop("postal code"), text)
        text = _ZIP.sub(drop("postal code"), text)
    if not text.islower():  # names (and the member's own name words) are only taken where capitalized
        text = _scrub_names(text, tuple(own), found)
    return Scrubbed(_tidy(text), tuple(found))


# ----------------------------------------------------------------------------- observation -> inference

_NUMW = (r"(?:\d+(?:[.,]\d+)?|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|"
         r"fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|"
         r"ninety|hundred|a hundred|a dozen|dozens of|a couple(?: of)?|couple of|a few|few|several|many|"
         r"multiple|numerous|countless|some|half an?|a half)")
_UNIT_T = r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|nights?|weeks?|fortnights?|months?|years?|yrs?)"
_MONTH_FULL = r"(?:january|february|april|june|july|august|september|october|november|december)"
_MONTH_AMBIG = r"(?:may|march|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)"
_DAY_FULL = r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?"
_DAY_ABBR = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)"
_PREP = r"(?:in|on|since|during|last|this|next|from|until|till|through|by|before|after|around|early|mid|late|back in)"
_PERIOD = (r"(?:week|weekend|fortnight|month|year|season|quarter|spring|summer|fall|autumn|winter|"
           r"holidays?|christmas|black friday|cyber monday|night|morning|afternoon|evening|time)")
_DAYNUM = r"\d{1,2}(?:st|nd|rd|th)?"

_OBSERVATION: tuple[tuple[re.Pattern[str], Any], ...] = tuple((re.compile(p, _I), r) for p, r in (
    # "spent time on the beauty pages": how long, said as what
    (r"\b(?:spent|spends|spending)\s+(?:some\s+|a\s+lot\s+of\s+|much\s+|more\s+|extra\s+|quite\s+some\s+)?"
     r"time\s+(?:on|with|in|looking\s+at|browsing|reading)\s+", "looked at "),
    (r"\bevery\s+(?=(?:email|message|newsletter|sale|drop|launch|update)s?\b)", ""),
    # scarcity and ratings: say it without the number
    (r"\bonly\s+\d+\s+(?:items?\s+|units?\s+|pairs?\s+)?(?:left|remaining)(?:\s+in\s+stock)?", "in stock"),
    (r"\b(?:rated|rating|scored)\s+(?:of\s+)?\d+(?:\.\d+)?\s*(?:out\s+of|/)\s*\d+(?:\s+stars?)?", "rated highly"),
    (r"\b\d+(?:\.\d+)?\s*(?:out\s+of|/)\s*\d+\s+stars?", "highly rated"),
    # times of day
    (r"\b(?:at|around|about|by|after|before|past|near|just after|just before)?\s*\d{1,2}(?:[:.]\d{2}){0,2}\s*"
     r"(?:[ap]\.?\s?m\b\.?|o'?clock\b)", ""),
    (r"\b(?:at|around|about|by|after|before)?\s*\d{1,2}:\d{2}(?::\d{2})?\b", ""),
    (r"\b(?:at|around|about|after|before|past)\s+(?:noon|midnight|midday|dawn|dusk|sunrise|sunset|"
     r"lunch(?:time)?|bedtime|dinner(?:time)?|breakfast)\b", ""),
    (r"\b(?:late|early)\s+(?:at\s+night|in\s+the\s+(?:morning|evening|day|afternoon|night))\b", ""),
    (r"\b(?:in|during)\s+the\s+(?:early\s+|late\s+|wee\s+|small\s+)?(?:morning|afternoon|evening|night|hours)s?\b",
     ""),
    (r"\b(?:late|early)[- ](?:night|morning|evening)s?\b", ""),
    (r"\b(?:tonight|overnight|at\s+night|after\s+(?:work|hours|dark)|on\s+(?:a|your|their)\s+lunch\s+break)\b",
     ""),
    # relative dates ("4 months ago", "the other day", "last week", "earlier this year")
    (r"\b" + _NUMW + r"\s+" + _UNIT_T + r"\s+(?:ago|back|before|earlier|prior)\b", ""),
    (r"\b(?:yesterday|today|tomorrow|tonight)(?:\s+(?:morning|afternoon|evening|night|lunchtime))?\b", ""),
    (r"\b(?:just\s+)?(?:yesterday|today|the\s+day\s+before(?:\s+yesterday)?|the\s+other\s+day|"
     r"earlier\s+today|this\s+past\s+\w+)\b", ""),
    (r"\b(?:(?:over|in|during|within|for)\s+)?(?:the\s+)?(?:last|this|next|past|previous|coming|earlier\s+this|"
     r"later\s+this|recent)\s+(?:" + _NUMW + r"\s+)?" + _PERIOD + r"s?\b", ""),
    (r"\b(?:every|each)\s+(?:single\s+|other\s+)?(?:" + _NUMW + r"\s+)?(?:" + _PERIOD + r"|day|" + _DAY_FULL
     + r"|visit|payday|pay\s+day)s?\b", ""),
    (r"\b(?:on|most|over\s+the|during\s+the|at\s+the)\s+weekends?\b", ""),
    # calendar dates
    (r"\b(?:" + _PREP + r"[- ]\s*)*+(?:the\s+)?(?:" + _DAYNUM + r"\s+(?:of\s+)?)?" + _MONTH_FULL + r"\.?"
     r"(?:\s+" + _DAYNUM + r"\b)?(?:,?\s+\d{4})?\b", ""),
    (r"\b(?:" + _PREP + r"[- ]\s*)++(?:the\s+)?(?:" + _DAYNUM + r"\s+(?:of\s+)?)?" + _MONTH_AMBIG + r"\b\.?"
     r"(?:\s+" + _DAYNUM + r"\b)?(?:,?\s+\d{4})?", ""),
    (r"\b(?:the\s+)?" + _DAYNUM + r"\s+(?:of\s+)?" + _MONTH_AMBIG + r"\b\.?(?:,?\s+\d{4})?", ""),
    (r"\b" + _MONTH_AMBIG + r"\.?\s+" + _DAYNUM + r"\b(?:,?\s+\d{4})?", ""),
    (r"\b(?:(?:on|last|this|next|every|each|since|until|by)\s+)?" + _DAY_FULL
     + r"(?:\s+(?:night|morning|evening|afternoon)s?)?\b", ""),
    (r"\b(?:on|last|this|next|every|each|since|until|by)\s+" + _DAY_ABBR + r"\b\.?", ""),
    (r"\b(?:(?:on|since|from|until|by)\s+)?\d{4}-\d{1,2}-\d{1,2}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?\b", ""),
    (r"\b(?:(?:on|since|from|until|by)\s+)?\d{1,2}[/-]\d{1,2}(?:[/-]\d{2,4})?\b", ""),
    (r"\b(?:(?:on|since|from|until|by)\s+)?\d{1,2}\.\d{1,2}\.\d{2,4}\b", ""),
    (r"\b(?:on|since|by|until)\s+the\s+" + _DAYNUM + r"\b", ""),
    (r"\b(?:" + _PREP + r"\s+)++(?:(?:the\s+)?(?:spring|summer|fall|autumn|winter)\s+(?:of\s+)?)?(?:19|20)\d{2}\b", ""),
    (r"\b(?:in|during|last|this|next|early|late|over|since|back\s+in)\s+(?:the\s+)?(?:early\s+|late\s+)?"
     r"(?:spring|summer|fall|autumn|winter)(?:\s+(?:of\s+)?(?:19|20)\d{2})?\b", ""),
    (r"\b(?:over|during|before|after|since|around|for)\s+(?:the\s+)?(?:holidays|christmas|thanksgiving|"
     r"black\s+friday|cyber\s+monday|new\s+year'?s?|halloween|easter|labou?r\s+day|memorial\s+day)\b", ""),
    (r"\b(?:19|20)\d{2}\b", ""),
    # frequencies and counts
    (r"\b" + _NUMW + r"\s*(?:times?|x)\b(?:\s+(?:a|per|each|every|this|last|in\s+the\s+(?:last|past))\s+\w+)?", ""),
    (r"(?<![\w.])\d+\s*x\b|\bx\s*\d+\b", ""),
    (r"\b(?:once|twice|thrice)\b(?:\s+(?:a|per|each|every|this|last|in\s+(?:a|the|one))\s+(?:\w+\s+)?"
     r"(?:day|night|week|weekend|month|year|season|row|while))?", ""),
    (r"\b(?:again\s+and\s+again|over\s+and\s+over|repeatedly|regularly|frequently|often|constantly|"
     r"habitually|religiously|daily|nightly|weekly|bi-?weekly|fortnightly|monthly|quarterly|yearly|annually|"
     r"per\s+(?:day|week|month|year)|in\s+a\s+row|back[- ]to[- ]back|non-?stop)\b", ""),
    (r"\b(?:(?:your|their|his|her|the|a)\s+)?(?:\d+(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|"
     r"seventh|eighth|ninth|tenth|\w+teenth|\w+ieth|\w+tieth|latest|last|most\s+recent|previous|recent)\s+"
     r"(visit|order|purchase|session|search|view|login|return|click|time)(e?s)?\b", lambda m: ("past " if m.group(2) else "a past ") + m.group(1) + (m.group(2) or "")),
    # durations ("for 3 minutes and 12 seconds", "spent two hours", "for ages")
    (r"\b(?:(?:for|over|about|nearly|almost|around|roughly|more\s+than|less\s+than|under|up\s+to|at\s+least|"
     r"a\s+good|a\s+full|spent|spending)\s+)*+" + _NUMW + r"\s*(?:-\s*)?" + _UNIT_T
     + r"(?:\s+(?:and|&)\s+" + _NUMW + r"\s*" + _UNIT_T + r")*(?:\s+(?:long|straight|in\s+total|total|"
     r"on\s+end|browsing|looking|viewing|shopping))?\b", ""),
    (r"\b(?:for|over)\s+(?:hours|ages|days|weeks|months|years|a\s+while|a\s+long\s+time|a\s+bit|some\s+time|"
     r"quite\s+a\s+while)\b", ""),
    (r"\ball\s+(?:day|night|morning|evening|afternoon|week(?:end)?)(?:\s+long)?\b", ""),
    # counted things: keep the noun, drop the number ("bought 3 pairs" -> "bought pairs")
    (r"\b(?:\d+|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|several|multiple|numerous|"
     r"dozens\s+of|a\s+dozen|a\s+couple\s+of|a\s+few|many)\s+(?=(?:visits|views|sessions|searches|clicks|orders|"
     r"purchases|items|pairs|products|pages|sets|units|pieces|packs|returns|reviews)\b)", ""),
    # money spent and percentages paid
    (r"\b(?:over|about|around|nearly|almost|more\s+than|less\s+than|under)?\s*"
     r"(?:\$|USD\s?|CAD\s?|C\$|€|£)\s?\d[\d,]*(?:\.\d+)?(?:\s*(?:k|thousand|million))?", ""),
    (r"\b\d+(?:\.\d+)?\s?%(?:\s+off)?", ""),
))
#: numbers that describe a product, not the member's behaviour ("SPF 30", "size 9.5", "24L", "1000-piece")
_PRODUCT_NUMBER = re.compile(
    r"\b(?:spf|upf|size|sizes|model|no\.|number|gen|series|v|mk|pack\s+of|set\s+of)\s*\d+(?:[.,]\d+)?\b"
    r"|\b\d+(?:[.,]\d+)?\s*-?(?:l|ml|oz|fl\s*oz|mm|cm|m|in|inch|inches|ft|k|kg|g|lb|lbs|mah|w|v|piece|pc|pcs|pack|"
    r"count|ct|gb|tb|d)\b", re.I)
_STRAY_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?:st|nd|rd|th)?(?![\w])")

_MAX_DETAIL = 200
_MAX_SCAN = 600  # longer text is cut (at a word, 40 characters back) before it is scanned


def _head(text: str, limit: int = _MAX_SCAN) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 40)
    return text[:cut if cut > 0 else limit - 40]


def _strip_stray_numbers(text: str) -> str:
    keep = [m.span() for m in _PRODUCT_NUMBER.finditer(text)]

    def f(m: re.Match[str]) -> str:
        if any(a <= m.start() and m.end() <= b for a, b in keep):
            return m.group(0)
        return ""
    return _STRAY_NUMBER.sub(f, text)


def _tidy_detail(text: str) -> str:
    text = re.sub(r"\s{2,}", " ", text)
    text = re.sub(r"\s+([,.;:!?)])", r"\1", text)
    text = re.sub(r"\(\s*\)", "", text)
    text = re.sub(r"\b(?:in|on|at|since|for|from|during|over|by|of|and|the|until|to|near|around|about|with)"
                  r"(?:\s+(?:in|on|at|since|for|from|during|over|by|of|and|the|until|to|near|around|about|with))*"
                  r"\s*$", "", text.strip(), flags=re.I)
    return re.sub(r"\s{2,}", " ", text).strip(" ,;:-")


@lru_cache(maxsize=65536)
def soften_detail(detail: str) -> str:
    """An evidence detail fit for a prompt: one line, no personal data, and inference, not observation:
    counts, frequencies, durations, dates and times of day taken out.

    "viewed trail shoes 4 times this week" -> "viewed trail shoes";
    "purchased running socks 4 months ago" -> "purchased running socks";
    "bought a gift for Emily Watson at 12 Oak St" -> "bought a gift for someone".
    """
    text = header_safe(_head(detail))
    text = _DELIMITERS.sub(" ", text)
    text = scrub_pii(text).text
    for pattern, repl in _OBSERVATION:
        text = pattern.sub(repl, text)
    text = _strip_stray_numbers(text)
    text = _tidy_detail(text)
    return text[:_MAX_DETAIL].rstrip()


#: our prompt delimiters, which member or recommender text must never open or close
_DELIMITERS = re.compile(r"</?\s*member_notes\s*>", re.I)
NOTES_MAX = 300


def scrub_notes(text: str, *, own: Iterable[str] = ()) -> str:
    """Stated preferences for the ``<member_notes>`` block: clean characters, no delimiters, no personal
    data, at most NOTES_MAX characters."""
    text = clean_chars(_head(text, 2 * _MAX_SCAN), keep_newlines=True)
    text = _DELIMITERS.sub(" ", text)
    text = "\n".join(" ".join(line.split()) for line in text.split("\n"))
    text = re.sub(r"\n{2,}", "\n", text)
    text = scrub_pii(text, own=own).text
    return text[:NOTES_MAX].strip()


def scrub_instructions(text: str, *, first: str = "", others: Iterable[str] = (), keep: Iterable[str] = ()) -> str:
    """Repair instructions (findings quoted back to the model): the member's first name becomes
    ``{first_name}`` and their other name words (a surname from the e-mail) ``[surname]``; e-mail
    addresses and long numbers are taken out. Capitalized words are kept, and so is any text inside a
    ``keep`` phrase (the plan's product names: "Aurora Rain Jacket" for a member named Aurora)."""
    text = clean_chars(text, keep_newlines=True)
    text = _DELIMITERS.sub(" ", text)
    text = _EMAIL.sub("[an e-mail address]", text)
    text = _DIGIT_RUN.sub(_digit_run(lambda m: "[a number]"), text)
    kept: list[tuple[int, int]] = []
    for phrase in keep:
        if phrase:
            kept += [m.span() for m in re.finditer(re.escape(phrase), text)]
    words = [(w, "{first_name}") for w in first.split() if len(w) >= 2]
    words += [(w, "[surname]") for w in others if len(w) >= 2 and w.lower() not in first.lower().split()]
    for w, repl in words:
        rx = _own_word_re(w)

        def sub(m: re.Match[str], repl: str = repl) -> str:
            if not m.group(0)[:1].isupper() or any(a <= m.start() < b for a, b in kept):
                return m.group(0)
            return repl
        text = rx.sub(sub, text)
        kept = []  # spans move once a name is replaced; the first pass protected the product names
        for phrase in keep:
            if phrase:
                kept += [m.span() for m in re.finditer(re.escape(phrase), text)]
    return text
