"""Responders for the fake OpenAI server that write like a careful copywriter (or, on demand, badly).

They read the last user message of the prompt the engine rendered: the product
lines (``- product_id: P1 | name: ...``), the tier sentence and the per-product
reasons (``P1 reasons: (1) [purchase] ...``), so the drafts are true to the plan.
"""

from __future__ import annotations

import json
import re
from typing import Any

PRODUCT = re.compile(r"^- product_id: (\S+) \| name: ([^|\n]+?) \|", re.M)
REASONS = re.compile(r"^(\S+) reasons:(.*)$", re.M)
SOURCE = re.compile(r"\[(\w+)\]")

PHRASES = {
    "purchase": "You bought similar gear before.",
    "stated_preference": "It matches the preferences you shared with us.",
    "browsing": "It fits the styles you've shown interest in.",
    "predicted": "It suits the season ahead.",
    "similar_members": "Members with similar purchases rated it highly.",
    "inventory": "It's in stock now.",
    "segment": "It's popular with members this season.",
}


def last_user(body: dict[str, Any]) -> str:
    users = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
    return users[-1] if users else ""


def plan_of(body: dict[str, Any]) -> tuple[list[tuple[str, str]], dict[str, list[str]], bool]:
    text = last_user(body)
    # a repair turn carries no plan: use the first real request (the one after the worked example)
    if "Products (" not in text:
        users = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
        text = next((u for u in reversed(users) if "Products (" in u), "")
    products = PRODUCT.findall(text)
    reasons = {pid: SOURCE.findall(rest) for pid, rest in REASONS.findall(text)}
    return products, reasons, "chose basic emails" in text


def clean_draft(body: dict[str, Any]) -> dict[str, Any]:
    products, reasons, basic = plan_of(body)
    explanations = []
    if not basic:
        for pid, _name in products:
            srcs = [s for s in reasons.get(pid, []) if s in PHRASES][:2]
            text = "We recommended this because: " + " ".join(
                f"({i}) {PHRASES[s]}" for i, s in enumerate(srcs, 1))
            explanations.append({"product_id": pid, "text": text})
    users = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
    text = next((u for u in reversed(users) if "Products (" in u), "")
    if "Channel: SMS" in text:
        return {"subject": "Picks", "preheader": "Picks", "body": "New picks for the season are in.",
                "explanations": []}
    if "Channel: push" in text:
        return {"subject": "New picks for the season", "preheader": "Picks",
                "body": "We've gathered a few things you'll actually use.", "explanations": []}
    return {
        "subject": "A few picks for the weeks ahead",
        "preheader": "Useful things for the season, chosen with care",
        "body": "The season's turning, and we've gathered a few things you'll actually use. "
                "Have a look when you have a minute.",
        "explanations": explanations,
    }


def copywriter(body: dict[str, Any]) -> str:
    """Always a clean draft."""
    return json.dumps(clean_draft(body))


def bad_then_good(body: dict[str, Any]) -> str:
    """First attempt breaks brand rules (superlative, shouting); the repair turn is clean."""
    if any("broke these rules" in (m.get("content") or "") for m in body.get("messages", [])):
        return copywriter(body)
    d = clean_draft(body)
    d["subject"] = "The BEST picks you'll ever see!!"
    return json.dumps(d)


def always_bad(body: dict[str, Any]) -> str:
    """Never fixes itself: surveillance phrasing on every attempt."""
    d = clean_draft(body)
    d["body"] = "We noticed you looked at this 4 times last night at 11:47 PM. It's yours."
    return json.dumps(d)
