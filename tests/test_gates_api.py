"""The gates' public API: run_gates on assembled messages, verdicts, repair instructions, schema."""

from __future__ import annotations

import datetime as dt

import pytest

from contentgen.gates import load_rules, repair_instructions, run_gates, verdict
from tests.examples import example_context
from contentgen.gates.schema import DRAFT_SCHEMA, validate_draft, validate_message_dict
from contentgen.models import Explanation, Finding, RenderedMessage

FOOTER = ("You're receiving this because you're an AthenaPlus member. Unsubscribe: https://athenaplus.example/"
          "unsubscribe?t=abc | Manage your preferences: https://athenaplus.example/preferences | Athena Retail Group, "
          "400 Market Street, Suite 200, Portland, OR 97204, USA | Privacy dashboard: https://athenaplus.example/privacy")


def assembled(paragraphs: str, *, name: str = "Nia", lines: str = "", explanations=(), subject="Fresh picks for you",
              preheader="Warm layers for winter walks") -> RenderedMessage:
    greeting = f"Hi {name}," if name else "Hi there,"
    body = f"{greeting}\n\n{paragraphs}\n\n" + (f"{lines}\n\n" if lines else "") + "— The AthenaPlus team"
    return RenderedMessage(subject=subject, preheader=preheader, body=body, cta_text="Shop your picks",
                           cta_url="https://athenaplus.example/picks", explanations=tuple(explanations), footer=FOOTER)


EXPL = (Explanation(product_id="P300", text="We recommended this because: (1) You bought hiking boots. (2) It suits "
                                             "winter hikes."),)


def errors(findings):
    return [f for f in findings if f.severity == "error" or not f.decidable]


@pytest.mark.parametrize("price", ["$129", "$129.00", "129 dollars", "USD 129"])
def test_price_formats_match_the_catalog(price):
    msg = assembled(f"The Aurora Rain Jacket is {price} and waterproof.", explanations=EXPL)
    assert errors(run_gates(msg, example_context())) == []


def test_assembled_product_and_offer_lines_pass():
    msg = assembled("It's a good week for a new layer. It's waterproof and made with recycled fabric.",
                    lines="Aurora Rain Jacket: $129.00, 15% off until December 6 ($109.65)", explanations=EXPL)
    fs = run_gates(msg, example_context())
    assert verdict(fs) == "pass", errors(fs)


def test_empty_name_greeting_passes_and_empty_greeting_fails():
    ctx = example_context(first_name="")
    ok = assembled("The Aurora Rain Jacket is $129.", name="", explanations=EXPL)
    assert verdict(run_gates(ok, ctx)) == "pass"
    bad = ok.model_copy(update={"body": ok.body.replace("Hi there,", "Hi ,")})
    fs = run_gates(bad, ctx)
    assert verdict(fs) == "fail" and any(f.rule_id == "brand.name-use" for f in fs)


def test_numbers_in_names_and_phrases_are_not_prices():
    ctx = example_context(tier=2)
    msg = assembled("Start with a 5K, build to a 10K. The Summit Hydration Vest 5L is $59, and the Glow Daily "
                    "Moisturizer SPF 30 is $24.", explanations=(
                        Explanation(product_id="P200", text="We recommended this because it's in stock now."),
                        Explanation(product_id="P600", text="We recommended this because you bought sunscreen.")))
    assert errors(run_gates(msg, ctx)) == []


def test_findings_carry_field_span_and_excerpt():
    msg = assembled("These are the best jackets. The Aurora Rain Jacket is $129.", explanations=EXPL)
    f = next(f for f in run_gates(msg, example_context()) if f.rule_id == "brand.superlatives")
    assert f.field == "body" and msg.body[f.span[0]:f.span[1]] == f.excerpt == "best" and f.gate == "brand"


def test_undecidable_finding_gives_review():
    msg = assembled("Gentle on sensitive skin. The Aurora Rain Jacket is $129.", explanations=EXPL)
    fs = run_gates(msg, example_context())
    assert verdict(fs) == "review"
    assert any(not f.decidable for f in fs)


def test_verdict_order():
    e = Finding(rule_id="x", gate="brand", severity="error")
    w = Finding(rule_id="y", gate="brand", severity="warning", decidable=False)
    i = Finding(rule_id="z", gate="brand", severity="info")
    assert verdict([]) == "pass" and verdict([i]) == "pass" and verdict([w, i]) == "review" and verdict([w, e]) == "fail"


def test_offer_dates_follow_the_send_date():
    msg = assembled("The Aurora Rain Jacket is 15% off until December 6, so it's $109.65.", explanations=EXPL)
    assert verdict(run_gates(msg, example_context())) == "pass"
    later = run_gates(msg, example_context(send_date=dt.date(2026, 12, 8)))
    assert {f.rule_id for f in later if f.severity == "error"} >= {"facts.percent-offer", "facts.price"}


def test_repair_instructions_are_numbered_and_actionable():
    msg = assembled("We wanted to let you know that because you have recently started hiking we have picked out a "
                    "jacket that will keep you dry on every single walk. It's the best.", explanations=EXPL)
    text = repair_instructions(run_gates(msg, example_context()))
    lines = text.splitlines()
    assert lines[0].startswith("1. ") and any(x.split(". ", 1)[1].startswith("body:") for x in lines)
    assert any("20 words" in x for x in lines) and any('"best"' in x for x in lines)
    # no rule ids: the embedded model copied "[brand.superlatives]" from a repair prompt into a sent e-mail
    assert "brand." not in text and "[" not in text


def test_run_gates_uses_default_rules_and_is_pure():
    msg = assembled("The Aurora Rain Jacket is $129.", explanations=EXPL)
    ctx = example_context()
    assert run_gates(msg, ctx) == run_gates(msg, ctx, load_rules())


def test_schema_for_case_messages():
    assert validate_message_dict({"subject": "x"})
    fs = validate_message_dict({"subject": "s", "preheader": "p", "body": 3, "cta_text": "", "cta_url": "",
                                "explanations": [], "footer": "f"})
    assert [f.field for f in fs] == ["body"] and fs[0].gate == "schema"
    assert validate_message_dict("nope")[0].rule_id == "schema.message-type"


def test_draft_schema_api_unchanged():
    draft, fs = validate_draft('{"subject": "s", "preheader": "p", "body": "b", "explanations": []}')
    assert draft is not None and fs == [] and DRAFT_SCHEMA["required"]
    _, fs = validate_draft('{"subject": "s"}')
    assert fs and all(f.gate == "schema" for f in fs)


def test_model_text_without_words_fails_the_schema_gate():
    """A broken JSON answer can leave "{" as the preheader or the prose: that is not copy."""
    lines = "Aurora Rain Jacket: $129.00, 15% off until December 6 ($109.65)"
    fs = run_gates(assembled("{", lines=lines, preheader="{", explanations=EXPL), example_context())
    bad = {(f.rule_id, f.field) for f in fs}
    assert ("schema.message-no-words", "preheader") in bad and ("schema.message-no-words", "body") in bad
    assert verdict(fs) == "fail"
    ok = run_gates(assembled("It's a good week for a new layer.", lines=lines, explanations=EXPL), example_context())
    assert not [f for f in ok if f.rule_id == "schema.message-no-words"]
