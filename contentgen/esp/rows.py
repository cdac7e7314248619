"""What every ESP file is made of: one flat row per member the run sends a message to.

Rows come from a finished run's ``messages.jsonl`` (checked against its
manifest first): only records with ``send: true`` and a message. The
unsubscribe link is the one in the e-mail's footer (the run's own link; its
token scheme is the assembler's), and gives the one-click unsubscribe headers
of RFC 8058: ``List-Unsubscribe: <https://...>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..email_html import unsubscribe_url
from ..errors import ContentgenError

LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"


class EspExportError(ContentgenError):
    exit_code = 2


@dataclass
class EspRow:
    member_id: str
    campaign_id: str
    message_id: str  # stable per campaign and member: the ESP's idempotency / dedup key
    channel: str
    variant: str
    segment: str
    tier: int
    outcome: str
    send_at_utc: str  # ISO 8601, "Z"; "" when the plan set no time
    subject: str = ""
    preheader: str = ""
    html: str = ""
    text: str = ""
    title: str = ""  # push / in-app
    body: str = ""  # push / in-app / SMS
    url: str = ""  # push / in-app link, the e-mail's call to action
    unsubscribe_url: str = ""
    list_unsubscribe: str = ""
    list_unsubscribe_post: str = ""
    email: str = ""  # only with --with-email
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def send_at(self) -> dt.datetime | None:
        if not self.send_at_utc:
            return None
        return dt.datetime.fromisoformat(self.send_at_utc.replace("Z", "+00:00"))

    def common(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        return d


#: Column order of the flat formats (csv, parquet) and the fields every platform file draws on.
COMMON_FIELDS: tuple[str, ...] = tuple(f for f in EspRow.__dataclass_fields__ if f != "extra")


def message_id(campaign_id: str, member_id: str) -> str:
    return hashlib.sha256(f"{campaign_id}:{member_id}".encode()).hexdigest()[:24]


def row_of(rec: dict[str, Any], campaign_id: str, email: str = "") -> EspRow | None:
    msg = rec.get("message")
    if not rec.get("send") or not msg or rec.get("outcome") == "invalid":
        return None
    channel = rec.get("channel") or "email"
    row = EspRow(member_id=str(rec["member_id"]), campaign_id=campaign_id,
                 message_id=message_id(campaign_id, str(rec["member_id"])), channel=channel,
                 variant=rec.get("variant") or "default", segment=rec.get("segment") or "",
                 tier=int(rec.get("tier") or 0), outcome=rec.get("outcome") or "",
                 send_at_utc=rec.get("send_at_utc") or "", email=email)
    if channel == "email":
        row.subject, row.preheader = msg.get("subject", ""), msg.get("preheader", "")
        row.html, row.text, row.url = msg.get("html", ""), msg.get("text", ""), msg.get("cta_url", "")
        unsub = unsubscribe_url(msg.get("footer", ""))
        if unsub:
            row.unsubscribe_url = unsub
            row.list_unsubscribe = f"<{unsub}>"
            row.list_unsubscribe_post = LIST_UNSUBSCRIBE_POST
    elif channel == "sms":
        row.body = msg.get("text", "")
    else:  # push, inapp
        row.title, row.body, row.url = msg.get("title", ""), msg.get("body", ""), msg.get("url", "")
    return row


@dataclass
class Source:
    run_dir: Path
    campaign_id: str
    manifest: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)  # members read, exported, skipped by reason

    def describe(self) -> dict[str, Any]:
        files = self.manifest.get("files", {})
        return {"run_dir": str(self.run_dir), "campaign_id": self.campaign_id,
                "messages_sha256": (files.get("messages.jsonl") or {}).get("sha256"),
                "run_counts": self.manifest.get("counts"), "send_date": self.manifest.get("send_date")}


def open_source(run_dir: Path) -> Source:
    """A finished run's export, verified against its manifest (a tampered or half-written one is refused)."""
    from ..export import VerifyError, verify

    run_dir = Path(run_dir)
    try:
        verify(run_dir)
    except VerifyError as e:
        raise EspExportError(f"cannot build ESP files from this run: {e.message}", file=str(run_dir),
                             hint="point it at a finished run's --out folder (or a `contentgen merge` output), "
                                  "and re-export it with `contentgen export DIR` if its files were changed") from None
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return Source(run_dir, str(manifest.get("campaign_id") or run_dir.name), manifest)


def iter_rows(src: Source, emails: dict[str, str] | None = None) -> Iterator[EspRow]:
    """Rows for members with ``send: true``, in the export's order; ``src.counts`` says what was skipped."""
    c = src.counts
    c.update({"records": 0, "exported": 0, "not_sent": 0, "no_email": 0})
    with open(src.run_dir / "messages.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            c["records"] += 1
            email = ""
            if emails is not None and rec.get("send"):
                email = emails.get(str(rec.get("member_id")), "")
                if not email:
                    c["no_email"] += 1
                    continue
            row = row_of(rec, src.campaign_id, email)
            if row is None:
                c["not_sent"] += 1
                continue
            c["exported"] += 1
            yield row


def load_emails(src: Source, campaign_path: Path | None = None) -> dict[str, str]:
    """member_id -> e-mail address from the campaign's members file, for members this run sends to."""
    from ..config import load_campaign
    from ..load import iter_rows as iter_input_rows

    if campaign_path is None:
        from ..store import read_meta

        p = read_meta(src.run_dir, "campaign_path")
        campaign_path = Path(p) if p else None
    if campaign_path is None:
        raise EspExportError("--with-email needs the campaign file to find the members file", file=str(src.run_dir),
                             hint="pass --campaign CAMPAIGN.yaml")
    campaign = load_campaign(campaign_path)
    wanted: set[str] = set()
    with open(src.run_dir / "messages.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("send"):
                wanted.add(str(rec.get("member_id")))
    emails: dict[str, str] = {}
    for _, row, _ in iter_input_rows(campaign.inputs.members):
        mid = str(row.get("member_id") or "").strip()
        if mid in wanted:
            email = str(row.get("email") or "").strip()
            if email and email.lower() != "nan":
                emails[mid] = email
    return emails
