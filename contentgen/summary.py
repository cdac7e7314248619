"""The summary a person reads after a run or the demo: outcomes, the model's health, and (for the demo)
what members really received: an e-mail the model wrote next to a fallback, side by side.

Reads only the run's output folder (``messages.jsonl``, ``manifest.json``, and ``run.db`` read-only for
the model's own draft when none of its e-mails was sent).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ORDER = ("approved", "repaired", "fallback", "review", "rejected", "holdout", "suppressed", "invalid")


def read_records(out: Path) -> list[dict[str, Any]]:
    path = Path(out) / "messages.jsonl"
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def fallback_records(out: Path) -> Iterator[dict[str, Any]]:
    """The fallback records of an export, streamed: only lines that carry the outcome are decoded (a
    2.3M-member export is not read into memory for the summary's counts)."""
    path = Path(out) / "messages.jsonl"
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if '"outcome": "fallback"' in line:  # inside a string value its quotes would be escaped
                r = json.loads(line)
                if r.get("outcome") == "fallback":
                    yield r


def outcome_line(manifest: dict[str, Any], records: Iterable[dict[str, Any]]) -> str:
    counts = manifest.get("counts", {})
    kinds = Counter(r.get("fallback") for r in records if r.get("outcome") == "fallback")
    parts = []
    for k in ORDER:
        if counts.get(k):
            part = f"{k} {counts[k]}"
            if k == "fallback" and (kinds.get("personal") or kinds.get("segment")):
                part += f" ({kinds.get('personal', 0)} personal, {kinds.get('segment', 0)} segment message)"
            parts.append(part)
    return "outcomes: " + (", ".join(parts) or "none")


def model_line(manifest: dict[str, Any]) -> str:
    u, d, llm = manifest.get("usage") or {}, manifest.get("dedup") or {}, manifest.get("llm") or {}
    return (f"model calls: {u.get('requests', 0)} ({llm.get('timeouts', 0)} timeouts, {llm.get('retries', 0)} "
            f"retries, {llm.get('rate_limited', 0)} x 429), tokens in/out: {u.get('prompt_tokens', 0)}/"
            f"{u.get('completion_tokens', 0)}, dedup ratio: {d.get('dedup_ratio', 0)}")


def _email_text(msg: dict[str, Any]) -> str:
    """The member's view without the legal footer (it is the same on every e-mail)."""
    text = msg.get("text") or msg.get("body") or ""
    footer = (msg.get("footer") or "").replace(" | ", "\n")
    if footer and text.endswith(footer):
        text = text[: -len(footer)].rstrip() + "\n\n(footer: unsubscribe, preferences, postal address)"
    return f"Subject: {msg.get('subject', '')}\nPreheader: {msg.get('preheader', '')}\n\n{text}"


def _last_draft(out: Path, member_key: str) -> dict[str, Any] | None:
    from .store import has_run_store, open_run_store

    if not has_run_store(Path(out)):
        return None
    try:
        store = open_run_store(Path(out))
        try:
            row = store.last_model_attempt(member_key)
        finally:
            store.close()
    except Exception:  # a damaged or locked store: the summary goes on without the draft
        return None
    if not row or not row[0]:
        return None
    try:
        draft = json.loads(row[0])
    except (json.JSONDecodeError, TypeError):
        draft = {"body": str(row[0])}
    if not isinstance(draft, dict):
        draft = {"body": str(row[0])}
    rules = sorted({f["rule_id"] for f in json.loads(row[1] or "[]") if f.get("severity") == "error"})
    return {"draft": draft, "rules": rules}


def examples(out: Path, records: list[dict[str, Any]]) -> tuple[tuple[str, str] | None, tuple[str, str] | None]:
    """(title, text) of a model-written e-mail and of a fallback one, as members got them.

    Model-written: an approved or repaired e-mail; when the model got none through its gates, its last
    draft for a member who got the fallback instead, with the rules it broke (it was not sent)."""
    emails = [r for r in records if r.get("channel") == "email" and r.get("send") and r.get("message")]
    model = next((r for r in emails if r["outcome"] in ("approved", "repaired")), None)
    fb = next((r for r in emails if r["outcome"] == "fallback" and r.get("fallback") == "personal"), None) \
        or next((r for r in emails if r["outcome"] == "fallback"), None)
    left = right = None
    if model is not None:
        left = (f"written by the model ({model['outcome']}; {model['segment']}, tier {model['tier']})",
                _email_text(model["message"]))
    elif fb is not None:
        got = _last_draft(out, fb.get("member_key") or fb["member_id"])
        if got:
            d = got["draft"]
            expl = "\n".join(f"Why? {x.get('text', '')}" for x in d.get("explanations") or [] if isinstance(x, dict))
            left = (f"the model's last draft for the member on the right (NOT sent: {', '.join(got['rules'][:4])})",
                    f"Subject: {d.get('subject', '')}\nPreheader: {d.get('preheader', '')}\n\n{d.get('body', '')}"
                    + (f"\n\n{expl}" if expl else ""))
    if fb is not None:
        kind = "personal: own picks, explained" if fb.get("fallback") == "personal" else "the segment's message"
        right = (f"fallback ({kind}; {fb['segment']}, tier {fb['tier']})", _email_text(fb["message"]))
    return left, right


def print_side_by_side(left: tuple[str, str] | None, right: tuple[str, str] | None, file=None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    shown = [x for x in (left, right) if x]
    if not shown:
        return
    width = max(80, shutil.get_terminal_size((100, 24)).columns)
    console = Console(file=file, width=width, highlight=False, soft_wrap=False)
    table = Table(box=box.SIMPLE_HEAD, expand=True, show_lines=False, padding=(0, 1))
    for title, _ in shown:
        table.add_column(Text(title, style="bold"), ratio=1, overflow="fold", vertical="top")
    table.add_row(*(Text(text) for _, text in shown))
    console.print(table)
