"""Push, SMS and in-app messages through the same gates (GateContext.channel, case field ``channel``)."""

from __future__ import annotations

import json

import pytest

from contentgen.check import check_case
from contentgen.gates import load_rules, run_gates, verdict
from contentgen.gates.checks.sms import gsm7_septets
from tests.examples import example_context
from contentgen.models import Explanation, RenderedMessage

EXPL = (Explanation(product_id="P300", text="We recommended this because: (1) You bought hiking boots. (2) It suits "
                                             "winter hikes."),)
SMS_BODY = ("AthenaPlus: The Aurora Rain Jacket is 15% off until Dec 6, ready for winter hikes. "
            "https://athenaplus.example/p/P300 Reply STOP to opt out.")


def push(**kw) -> RenderedMessage:
    base = dict(subject="Rain-ready for winter hikes", preheader="",
                body="The Aurora Rain Jacket is 15% off until December 6. It's waterproof and ready for winter hikes.",
                cta_text="", cta_url="https://athenaplus.example/app/p/P300", explanations=(), footer="")
    base.update(kw)
    return RenderedMessage(**base)


def sms(body: str = SMS_BODY) -> RenderedMessage:
    return RenderedMessage(subject="", preheader="", body=body, cta_text="", cta_url="", explanations=(), footer="")


def inapp(**kw) -> RenderedMessage:
    base = dict(subject="Rain-ready for winter hikes", preheader="",
                body="The Aurora Rain Jacket is 15% off until December 6. It's waterproof and ready for winter hikes.",
                cta_text="See it", cta_url="https://athenaplus.example/app/p/P300", explanations=EXPL, footer="")
    base.update(kw)
    return RenderedMessage(**base)


def _run(msg: RenderedMessage, channel: str, tier: int = 3):
    fs = run_gates(msg, example_context(tier=tier, channel=channel))
    return verdict(fs), {f.rule_id for f in fs if f.severity == "error" or not f.decidable}


@pytest.mark.parametrize("channel,msg", [("push", push()), ("sms", sms()), ("inapp", inapp())])
def test_clean_message_passes_on_its_channel(channel, msg):
    v, errs = _run(msg, channel)
    assert v == "pass", errs


def test_push_without_footer_or_sign_off_fails_as_email():
    v, errs = _run(push(), "email")
    assert v == "fail" and {"compliance.footer-unsubscribe", "brand.sign-off", "schema.message-minLength"} & errs


@pytest.mark.parametrize("msg,rule", [
    (push(subject="Fresh picks for your next run, plus cozy extras for winter"), "brand.push-title-length"),
    (push(body="The Aurora Rain Jacket is 15% off until December 6. It's waterproof, made with recycled fabric and "
               "ready for winter hikes, rainy commutes and weekend walks."), "brand.push-body-length"),
    (push(body="Hi Nia, the Aurora Rain Jacket is 15% off until December 6."), "brand.push-greeting"),
    (push(body="The Aurora Rain Jacket is 15% off until December 6. — The AthenaPlus team"),
     "brand.channel-sign-off"),
    (push(cta_url="https://athenaplus.example.evil.io/p"), "compliance.links"),
    (push(subject="Your package is on its way"), "compliance.deceptive-subject"),
    (push(body="We noticed you were looking at rain jackets. It's 15% off until December 6."), "compliance.surveillance"),
])
def test_push_rules(msg, rule):
    v, errs = _run(msg, "push")
    assert v == "fail" and rule in errs, errs


@pytest.mark.parametrize("body,rule", [
    (SMS_BODY.replace("ready for winter hikes", "waterproof, recycled and ready for winter hikes, rainy commutes "
                      "and long weekend walks"), "compliance.sms-length"),
    (SMS_BODY.replace("15% off", "15% off ❄️"), "compliance.sms-gsm7"),
    (SMS_BODY.replace("Dec 6,", "Dec 6 —"), "compliance.sms-gsm7"),
    (SMS_BODY.replace("AthenaPlus: ", ""), "compliance.sms-sender"),
    (SMS_BODY.replace(" Reply STOP to opt out.", ""), "compliance.sms-opt-out"),
    (SMS_BODY.replace("https://athenaplus.example/p/P300", "https://bit.ly/x1"), "compliance.sms-link"),
    (SMS_BODY.replace("https://", "http://"), "compliance.sms-http"),
    (SMS_BODY.replace("Reply STOP", "— The AthenaPlus team Reply STOP"), "brand.channel-sign-off"),
    (SMS_BODY.replace("15% off", "20% off"), "facts.percent-offer"),
])
def test_sms_rules(body, rule):
    v, errs = _run(sms(body), "sms")
    assert v == "fail" and rule in errs, errs


@pytest.mark.parametrize("msg,rule", [
    (inapp(subject="Fresh picks for your next run, plus a few cozy extras for winter"), "brand.inapp-title-length"),
    (inapp(body="The Aurora Rain Jacket is 15% off until December 6. " * 6), "brand.inapp-body-length"),
    (inapp(body="The Aurora Rain Jacket is 15% off until December 6.\n\n— The AthenaPlus team"),
     "brand.channel-sign-off"),
    (inapp(explanations=()), "compliance.explanation-missing"),
])
def test_inapp_rules(msg, rule):
    v, errs = _run(msg, "inapp")
    assert v == "fail" and rule in errs, errs


def test_gsm7_septets():
    assert gsm7_septets("AthenaPlus: £5 off [today]") == 28
    assert gsm7_septets("It’s") is None and gsm7_septets("❄") is None


def test_check_case_reads_the_channel_field():
    ctx = example_context()
    case = {"case_id": "c-sms", "send_date": "2026-11-24", "channel": "sms",
            "member": ctx.member.model_dump(mode="json"),
            "recommendations": [r.model_dump(mode="json") for r in ctx.recommendations],
            "offers": [o.model_dump(mode="json") for o in ctx.offers],
            "catalog": [p.model_dump(mode="json") for p in ctx.catalog.values()],
            "message": {"subject": "", "preheader": "", "body": SMS_BODY, "cta_text": "", "cta_url": "",
                        "explanations": [], "footer": ""}}
    rules = load_rules()
    assert check_case(json.loads(json.dumps(case)), rules)[0] == "pass"
    as_email = dict(case, channel="email")
    v, fs = check_case(as_email, rules)
    assert v == "fail" and any(f.gate == "schema" for f in fs)
    bad = dict(case, channel="fax")
    with pytest.raises(Exception):
        check_case(bad, rules)
