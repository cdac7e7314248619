"""The gate engine: one matcher (prefilter + re), rules packs as data (vocabularies, accept list,
fix texts, brand slots), kinds and checks as plug-ins, state on the compiled rules."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contentgen.check import check_case
from contentgen.config import Brand
from contentgen.errors import RuleFileError
from contentgen.gates import load_rules, repair_instructions, run_gates
from contentgen.gates import text as T
from contentgen.gates.engine.matcher import backend_names, line_local, prefilterable
from contentgen.models import Explanation, RenderedMessage
from tests.examples import example_context

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "tests" / "cases"
RULES = load_rules()


def _field_texts(limit: int | None = None) -> list[str]:
    out: list[str] = []
    for path in sorted(CASES.glob("*-fail.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            m = json.loads(line).get("message") or {}
            for k in ("subject", "preheader", "body", "cta_text", "footer"):
                if isinstance(m.get(k), str) and m[k]:
                    out.append(m[k])
            out.extend(e["text"] for e in m.get("explanations") or [] if isinstance(e, dict) and e.get("text"))
    out = list(dict.fromkeys(out))  # (footers and links repeat)
    return out[:limit] if limit else out


#: every pattern the prefilter knows, with the brand slots filled for the default brand
PATTERNS = [(pid, re.compile(src, flags)) for pid, (src, flags) in
            enumerate(RULES.build.table.expanded(lambda s: __import__("contentgen.gates.engine.slots",
                                                                       fromlist=["expand"]).expand(s, Brand())).patterns)]

# text the prefilter must judge right: letters, digits, case-folding oddities, non-ASCII digits,
# dashes, curly quotes, emoji, the control characters Python counts as whitespace
ALPHABET = st.sampled_from(list("aAeEsSkKiIoOtTnN 019$%.,!?'’“”—–-:;\n\t") +
                           ["ſ", "K", "İ", "ı", "é", "É", "٣", "\x1c", "\u00a0", "🎁", "❄️", "™", "SPF 30", "you've",
                            "best", "Best", "free shipping", "$14.00", "Dec 6", "11:47 PM", "three times", "P100"])


@pytest.mark.parametrize("backend", [b for b in backend_names() if b != "none"])
def test_prefilter_reports_every_pattern_re_finds_on_labelled_text(backend):
    """The prefilter may report too much, never too little: every pattern re matches in a text is a
    candidate there (on the fields of every failing labelled case)."""
    matcher = type(RULES.matcher_for(Brand())[0])(RULES.build.table.expanded(
        lambda s: __import__("contentgen.gates.engine.slots", fromlist=["expand"]).expand(s, Brand())), backend)
    missed = []
    texts = _field_texts()
    if backend != backend_names()[0]:
        texts = texts[::2]  # the fallback backend on every other text (the suite's time; the default sees all)
    for text in texts:
        hits = matcher.hits(text)
        if hits is None:
            continue
        for pid, rx in PATTERNS:
            if pid not in hits and rx.search(text):
                missed.append((pid, rx.pattern[:60], text[:60]))
    assert not missed, missed[:5]


@settings(max_examples=150, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join))
def test_prefilter_is_a_superset_on_hostile_text(text):
    for backend in [b for b in backend_names() if b != "none"]:
        matcher = RULES.matcher_for(Brand())[0] if backend == backend_names()[0] else None
        if matcher is None:
            continue
        hits = matcher.hits(text)
        if hits is None:
            assert not prefilterable(text)
            continue
        for pid, rx in PATTERNS:
            if pid not in hits:
                assert not rx.search(text), (pid, rx.pattern[:80], text)


def test_golden_findings_are_the_same_with_every_prefilter_backend():
    golden = json.loads((CASES / "golden-findings.json").read_text(encoding="utf-8"))
    for backend in backend_names():
        rules = load_rules(backend=backend)
        for path in sorted(CASES.glob("*.jsonl"))[:6]:
            for line in path.read_text(encoding="utf-8").splitlines():
                c = json.loads(line)
                c.pop("expect", None)
                v, fs = check_case(c, rules)
                got = {"verdict": v, "findings": [[f.rule_id, f.severity, f.field, list(f.span) if f.span else None]
                                                  for f in fs]}
                assert got == golden[f"{path.name}:{c['case_id']}"], (backend, c["case_id"])


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=60).map("".join))
def test_line_by_line_scans_equal_whole_text_scans(text):
    """Sentences, prices, percentages and dates never cross a line break: read line by line (and
    cached per line) they are what a scan of the whole text finds."""
    assert T.split_sentences(text) == T._split_sentences(text)
    ref = dt.date(2026, 11, 24)
    assert T.money_matches(text) == T._money_matches.__wrapped__(text)
    assert T.percent_matches(text) == T._percent_matches.__wrapped__(text)
    assert T.date_matches(text, ref) == T._date_matches.__wrapped__(text, ref)


def test_line_local_reads_patterns_conservatively():
    assert line_local(r"(?<![\w])best(?![\w])", re.I | re.M)
    assert line_local(r"[^.!?\n]{0,40}your", re.I | re.M)
    for src in (r"a\sb", r"[^<>]+", r"(?<=\n)x", r"\Ax", r"a\Wb", r"x$"):
        assert not line_local(src, re.I), src


def test_catalog_claims_found_in_one_pass_equal_the_claims_regex():
    from contentgen.gates.checks.catalog import catalog_claim_spans, catalog_index

    msg = RenderedMessage(body="x")
    ctx = example_context()
    idx = catalog_index(RULES.view(msg, ctx))
    for text in _field_texts(3000) + ["Waterproof, waterproofing, SPF 30spf 30, merino wool; fragrance-free!"]:
        want = tuple(m.span() for m in idx.claims_rx.finditer(text))  # type: ignore[union-attr]
        assert catalog_claim_spans(idx, text) == want, text


# --------------------------------------------------------------------------- rule packs as data

def _copy_rules(tmp_path: Path) -> Path:
    d = tmp_path / "pack"
    for sub in ("brand_rules", "compliance"):
        shutil.copytree(REPO / sub, d / sub)
    return d


def _body(text: str) -> RenderedMessage:
    footer = ("You're receiving this because you're an AthenaPlus member. Unsubscribe: https://athenaplus.example/u"
              " | Manage your preferences: https://athenaplus.example/preferences | Athena Retail Group, 400 Market "
              "Street, Suite 200, Portland, OR 97204, USA | Privacy dashboard: https://athenaplus.example/privacy")
    return RenderedMessage(subject="Fresh picks for you", preheader="Warm layers for winter walks",
                           body=f"Hi Nia,\n\n{text}\n\n— The AthenaPlus team", cta_text="Shop your picks",
                           cta_url="https://athenaplus.example/picks", footer=footer,
                           explanations=(Explanation(product_id="P300", text="We recommended this because you "
                                                                             "bought hiking boots."),))


def test_accept_list_allows_a_phrase_across_rules_with_owner_reason_and_expiry(tmp_path):
    pack = _copy_rules(tmp_path)
    msg = _body("Our Best Buy Bundle is a fine idea for the Aurora Rain Jacket, $129.")
    before = {f.rule_id for f in run_gates(msg, example_context(), load_rules([pack / "brand_rules", pack / "compliance"]))
              if f.severity == "error"}
    assert {"brand.superlatives", "facts.unknown-product"} <= before
    (pack / "compliance" / "accept.yaml").write_text(
        "accept:\n"
        "  - phrase: Best Buy Bundle\n"
        "    owner: dana@athena.example\n"
        "    reason: a product line name legal approved (LEG-112)\n"
        "    expires: 2026-12-31\n", encoding="utf-8")
    rules = load_rules([pack / "brand_rules", pack / "compliance"])
    after = {f.rule_id for f in run_gates(msg, example_context(), rules) if f.severity == "error"}
    assert not {"brand.superlatives", "facts.unknown-product"} & after
    expired = {f.rule_id for f in run_gates(msg, example_context(send_date=dt.date(2027, 1, 5)), rules)
               if f.severity == "error"}
    assert "brand.superlatives" in expired  # past its expiry the entry no longer applies
    # an entry limited to some rules leaves the others alone
    (pack / "compliance" / "accept.yaml").write_text(
        "accept:\n  - {phrase: Best Buy Bundle, rules: [brand.*], owner: dana, reason: approved, expires: 2026-12-31}\n",
        encoding="utf-8")
    only = {f.rule_id for f in run_gates(msg, example_context(), load_rules([pack / "brand_rules", pack / "compliance"]))
            if f.severity == "error"}
    assert "brand.superlatives" not in only and "facts.unknown-product" in only


def test_accept_entry_without_owner_is_a_path_line_error(tmp_path):
    pack = _copy_rules(tmp_path)
    (pack / "brand_rules" / "accept.yaml").write_text(
        "accept:\n  - phrase: Best Buy Bundle\n    owner: dana\n    reason: ok\n    expires: 2026-12-31\n"
        "  - phrase: Peak Deal\n    reason: no owner\n    expires: 2026-12-31\n", encoding="utf-8")
    with pytest.raises(RuleFileError) as e:
        load_rules([pack / "brand_rules", pack / "compliance"])
    assert "accept.yaml:6" in str(e.value) and "owner" in str(e.value)


def test_vocabulary_files_are_read_and_a_missing_one_is_named(tmp_path):
    pack = _copy_rules(tmp_path)
    nouns = pack / "compliance" / "vocab" / "product-nouns.txt"
    nouns.write_text(nouns.read_text(encoding="utf-8") + "gizmo\n", encoding="utf-8")
    msg = _body("The Zeta Gizmo is here.")
    ids = {f.rule_id for f in run_gates(msg, example_context(), load_rules([pack / "brand_rules", pack / "compliance"]))}
    assert "facts.unknown-product" in ids
    assert "facts.unknown-product" not in {f.rule_id for f in run_gates(msg, example_context(), RULES)}
    nouns.unlink()
    with pytest.raises(RuleFileError) as e:
        load_rules([pack / "brand_rules", pack / "compliance"])
    assert "product-nouns" in str(e.value) and "facts.yaml" in str(e.value)


def test_an_edited_rule_set_starts_fresh_and_the_old_one_keeps_its_state(tmp_path):
    """Checks keep what they compile on their compiled rule, not in module state keyed by rule id."""
    pack = _copy_rules(tmp_path)
    dirs = [pack / "brand_rules", pack / "compliance"]
    msg = _body("These socks are snazzy.")
    old = load_rules(dirs)
    assert "brand.banned-words" not in {f.rule_id for f in run_gates(msg, example_context(), old)}
    banned = pack / "brand_rules" / "banned-words.yaml"
    banned.write_text(banned.read_text(encoding="utf-8").replace("      - 'dirt[- ]cheap'\n",
                                                                  "      - 'dirt[- ]cheap'\n      - snazzy\n", 1),
                      encoding="utf-8")
    new = load_rules(dirs)
    assert new is not old
    assert "brand.banned-words" in {f.rule_id for f in run_gates(msg, example_context(), new)}
    assert "brand.banned-words" not in {f.rule_id for f in run_gates(msg, example_context(), old)}
    # a check's params too: the claims vocabulary
    facts = pack / "compliance" / "facts.yaml"
    facts.write_text(facts.read_text(encoding="utf-8").replace("        - {pattern: 'vegan', supported_by: [vegan]}\n",
                                                                "", 1), encoding="utf-8")
    claim = _body("The Cedar Wool Scarf is vegan.")
    assert "facts.claims" in {f.rule_id for f in run_gates(claim, example_context(), RULES)}
    assert "facts.claims" not in {f.rule_id for f in run_gates(claim, example_context(), load_rules(dirs))}


def test_brand_identity_comes_from_the_context():
    brand = Brand(program="NorthPerks", sender="North Goods Co", signoff="— The NorthPerks crew",
                  postal_address="12 Pier Road, Halifax, NS B3H 1A1, Canada", allowed_domains=("north.example",))
    footer = ("You're receiving this because you're a NorthPerks member. Unsubscribe: https://north.example/u | "
              "Manage your preferences: https://north.example/preferences | North Goods Co, 12 Pier Road, Halifax, "
              "NS B3H 1A1, Canada")
    ctx = example_context(tier=2).model_copy(update={"brand": brand, "allowed_domains": brand.allowed_domains})
    ok = RenderedMessage(subject="Fresh picks for you", preheader="Warm layers for winter walks",
                         body="Hi Nia,\n\nAs a NorthPerks member, you get first look.\n\n— The NorthPerks crew",
                         cta_text="Shop", cta_url="https://north.example/picks", footer=footer)
    errors = [f for f in run_gates(ok, ctx) if f.severity == "error"]
    assert errors == [], errors
    athena = ok.model_copy(update={"body": "Hi Nia,\n\nAs an AthenaPlus member, you get first look.\n\n"
                                           "— The AthenaPlus team"})
    found = {f.rule_id: f for f in run_gates(athena, ctx) if f.severity == "error"}
    assert {"brand.sign-off", "compliance.sender-programme"} <= set(found)
    assert "The NorthPerks crew" in found["brand.sign-off"].message and "NorthPerks crew" in found["brand.sign-off"].fix
    no_address = ok.model_copy(update={"footer": footer.replace("12 Pier Road, Halifax, NS B3H 1A1, Canada", "")})
    f = next(f for f in run_gates(no_address, ctx) if f.rule_id == "compliance.footer-address")
    assert "North Goods Co's postal address (12 Pier Road" in f.message


def test_every_rule_has_a_fix_text_and_repair_uses_it():
    assert all(cr.rule.fix.strip() for cr in RULES)
    msg = _body("These are the best jackets.").model_copy(update={"body": "Hi Nia,\n\nThese are the best jackets."})
    text = repair_instructions(run_gates(msg, example_context()))
    assert "Fix: remove the superlative and describe a concrete benefit." in text
    assert "Fix: end the body with the line '— The AthenaPlus team'." in text


def test_a_new_kind_and_a_new_check_are_one_registration(tmp_path):
    from collections.abc import Iterator

    from contentgen.gates.engine.findings import Hit
    from contentgen.gates.engine.model import Strict
    from contentgen.gates.engine.plugin import Check, Kind
    from contentgen.gates.engine.registry import CHECKS, KINDS, check, kind

    class PalSpec(Strict):
        min: int = 3

    @kind("palindrome")
    class Palindrome(Kind):
        Spec = PalSpec

        def hits(self, view):  # type: ignore[no-untyped-def]
            for label, text in view.fields(self.rule.fields):
                for m in re.finditer(r"\w+", text):
                    w = m.group().lower()
                    if len(w) >= self.spec.min and w == w[::-1]:
                        yield Hit(label, m.start(), m.end())

    @check("test.shout_free")
    class ShoutFree(Check):
        def run(self, rule, view) -> Iterator[Hit]:  # type: ignore[no-untyped-def]
            for label, text in view.fields(rule.fields):
                i = text.find("FREE")
                if i >= 0:
                    yield Hit(label, i, i + 4)

    try:
        d = tmp_path / "r"
        d.mkdir()
        (d / "x.yaml").write_text(
            "rules:\n"
            "  - {id: brand.pal, gate: brand, severity: warning, message: \"'{excerpt}'\", fix: reword, kind: palindrome,"
            " min: 4}\n"
            "  - {id: brand.free, gate: brand, severity: error, message: x, fix: y, kind: check, check: test.shout_free}\n",
            encoding="utf-8")
        rules = load_rules([d])
        fs = run_gates(RenderedMessage(subject="s", body="A level racecar, FREE.", footer="f"), example_context(), rules)
        assert {(f.rule_id, f.excerpt) for f in fs} >= {("brand.pal", "level"), ("brand.pal", "racecar"),
                                                        ("brand.free", "FREE")}
    finally:
        KINDS.pop("palindrome", None)
        CHECKS.pop("test.shout_free", None)


@pytest.mark.parametrize("yaml_text,needle", [
    ("  - {id: brand.x, gate: brand, severity: error, message: m, fix: f, kind: regex, pattern: '{{programme}}'}\n",
     "unknown slot {{programme}}"),
    ("  - {id: brand.x, gate: brand, severity: error, message: m, fix: f, kind: regex, pattern: a,"
     " when: {channel: [fax]}}\n", "unknown channel(s) fax"),
    ("  - {id: brand.x, gate: brand, severity: error, message: m, kind: regex, pattern: a}\n", "fix"),
    ("  - {id: brand.x, gate: brand, severity: error, message: m, fix: f, kind: regex, pattern: '{{vocab:nope}}'}\n",
     "no vocabulary 'nope'"),
])
def test_rule_file_mistakes_name_file_line_and_what_to_do(tmp_path, yaml_text, needle):
    d = tmp_path / "r"
    d.mkdir()
    (d / "x.yaml").write_text("rules:\n" + yaml_text, encoding="utf-8")
    with pytest.raises(RuleFileError) as e:
        load_rules([d])
    assert "x.yaml:2" in str(e.value) and needle in str(e.value) and "brand.x" in str(e.value)


# --------------------------------------------------------------------------- the README's analyst examples

def _readme_example(name: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    i = text.index(f"<!-- analyst-example: {name} -->")
    a = text.index("```yaml\n", i) + len("```yaml\n")
    return text[a:text.index("```", a)]


def test_readme_analyst_examples_work_as_yaml_only(tmp_path):
    """Adding a rule, an exception and a fix text, and accepting a phrase, as the README shows them."""
    import yaml

    from tests.examples import example_case

    pack = _copy_rules(tmp_path)
    dirs = [pack / "brand_rules", pack / "compliance"]
    (pack / "brand_rules" / "gifting-pressure.yaml").write_text(_readme_example("rule"), encoding="utf-8")
    fix = _readme_example("fix")
    signoff = pack / "brand_rules" / "sign-off.yaml"
    text = signoff.read_text(encoding="utf-8")
    line = next(x for x in text.splitlines() if x.startswith("    fix:"))
    signoff.write_text(text.replace(line, fix.rstrip("\n")), encoding="utf-8")
    (pack / "compliance" / "accept.yaml").write_text(_readme_example("accept"), encoding="utf-8")
    rules = load_rules(dirs)
    cr = rules.get("brand.gift-guilt")
    for ex, fires in [(x, True) for x in cr.rule.examples.fail] + [(x, False) for x in cr.rule.examples.pass_]:
        msg, ctx = example_case(cr.rule, ex)
        assert bool(rules.run_rule(cr, msg, ctx)) is fires, ex
    bad = _body("Don't let them down: the Best Buy Bundle suits the Aurora Rain Jacket, $129.").model_copy(
        update={"body": "Hi Nia,\n\nDon't let them down: the Best Buy Bundle suits the Aurora Rain Jacket, $129."})
    fs = run_gates(bad, example_context(), rules)
    ids = {f.rule_id for f in fs if f.severity == "error"}
    assert "brand.gift-guilt" in ids and "brand.sign-off" in ids
    assert not {"brand.superlatives", "facts.unknown-product"} & ids  # accepted
    assert "Fix: end the body with the line '— The AthenaPlus team', on a line of its own." in repair_instructions(fs)
    exc = yaml.safe_load("rules:\n  - {id: brand.x, gate: brand, severity: error, message: m, fix: f, kind: existence,"
                         " tokens: [best]}\n")
    exc["rules"][0].update(yaml.safe_load(_readme_example("exception")))
    d = tmp_path / "exc"
    d.mkdir()
    (d / "x.yaml").write_text(yaml.safe_dump(exc), encoding="utf-8")
    one = load_rules([d])
    assert [f.excerpt for f in run_gates(_body("Our bestseller, and the best."), example_context(), one)
            if f.rule_id == "brand.x"] == ["best"]
