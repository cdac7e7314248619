"""SMS: one GSM-7 segment (GSM 03.38 alphabet; extension characters count twice)."""

from __future__ import annotations

from collections.abc import Iterator

from ..engine.findings import Hit
from ..engine.model import Rule
from ..engine.plugin import Check, Params
from ..engine.view import MessageView
from .sms_models import SmsLengthParams

#: GSM 03.38 default alphabet (one septet each) and its extension table (escape + one septet).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")


def gsm7_septets(text: str) -> int | None:
    """Length of the text in GSM-7 septets, or None when a character forces UCS-2."""
    n = 0
    for ch in text:
        if ch in GSM7_BASIC:
            n += 1
        elif ch in GSM7_EXTENSION:
            n += 2
        else:
            return None
    return n


class Gsm7(Check):
    """Characters outside the GSM-7 alphabet (emoji, curly quotes, em dashes...): they force UCS-2
    encoding and 70-character segments."""
    name = "compliance.gsm7"

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        for label, text in view.fields(rule.fields):
            i = 0
            while i < len(text):
                ch = text[i]
                if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
                    i += 1
                    continue
                j = i + 1
                while j < len(text) and text[j] not in GSM7_BASIC and text[j] not in GSM7_EXTENSION:
                    j += 1
                yield Hit(label, i, j, slots={"chars": " ".join(f"U+{ord(c):04X}" for c in text[i:j][:4])})
                i = j


class SmsLength(Check):
    """One SMS segment: at most ``max`` GSM-7 septets (extension characters count twice)."""
    name = "compliance.sms_length"

    Params = SmsLengthParams

    def run(self, rule: Rule, view: MessageView) -> Iterator[Hit]:
        max_n = self.params.max
        for label, text in view.fields(rule.fields):
            n = gsm7_septets(text)
            n = len(text) if n is None else n  # non-GSM text is compliance.sms-gsm7's finding; count characters
            if n > max_n:
                yield Hit(label, min(max_n, len(text)), len(text), excerpt=text, slots={"count": n, "max": max_n})
