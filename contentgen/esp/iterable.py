"""Iterable: per-member data fields (``POST /api/users/bulkUpdate``) and each message as a targeted send
of a triggered campaign (``POST /api/email/target``, ``/api/push/target``, ``/api/sms/target``,
``/api/inApp/target``) with ``sendAt`` at the member's send time.

Documented shapes this follows (Iterable's API reference, https://api.iterable.com/api/docs, the
definitions ``BulkUpdateUsersRequest``/``OptionalApiUser``, ``TargetEmailRequest``,
``TargetPushRequest``, ``TargetSMSRequest`` and ``TargetInAppRequest``):

* bulkUpdate: ``{"users": [{"userId" | "email", "dataFields": {...}}]}``, "Max size of request body:
  4MB", 5 requests/second; provide an ``email`` or a ``userId`` but not both, depending on how the
  project identifies users (https://support.iterable.com/hc/articles/29156459027348);
* target: ``campaignId`` (required, int64), ``recipientUserId`` or ``recipientEmail`` (not both),
  ``dataFields`` (merged into the template, e.g. ``{{html}}``), ``sendAt`` "YYYY-MM-DD HH:MM:SS in UTC",
  up to 365 days ahead (in the past: sent at once); ``metadata`` exists on email and push only.

The message content is not stored on the profile (only small fields are): it travels with each targeted
send. Target files need the triggered campaign's id per channel: ``--esp-campaign email=123``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .files import Export, JsonlFile
from .rows import EspExportError, EspRow

DOCS = {  # operations and definitions of the API reference (its Swagger document), read for this module
    "api_reference": "https://api.iterable.com/api/docs",
    "users_bulk_update": "https://api.iterable.com/api/docs : POST /api/users/bulkUpdate (BulkUpdateUsersRequest)",
    "email_target": "https://api.iterable.com/api/docs : POST /api/email/target (TargetEmailRequest)",
    "push_target": "https://api.iterable.com/api/docs : POST /api/push/target (TargetPushRequest)",
    "sms_target": "https://api.iterable.com/api/docs : POST /api/sms/target (TargetSMSRequest)",
    "inapp_target": "https://api.iterable.com/api/docs : POST /api/inApp/target (TargetInAppRequest)",
    "identifying_users": "https://support.iterable.com/hc/articles/29156459027348",
}
BULK_MAX_BYTES = 4_000_000  # "Max size of request body: 4MB" (kept under 4 MiB and 4 MB alike)
BULK_MAX_USERS = 1000
ENDPOINT = {"email": "/api/email/target", "push": "/api/push/target", "sms": "/api/sms/target",
            "inapp": "/api/inApp/target"}


def send_at(row: EspRow) -> str | None:
    t = row.send_at
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else None


def data_fields(row: EspRow) -> dict[str, Any]:
    d: dict[str, Any] = {"cgMessageId": row.message_id, "cgCampaignId": row.campaign_id, "cgVariant": row.variant}
    if row.channel == "email":
        d.update(subject=row.subject, preheader=row.preheader, html=row.html, text=row.text,
                 unsubscribeUrl=row.unsubscribe_url, listUnsubscribe=row.list_unsubscribe,
                 listUnsubscribePost=row.list_unsubscribe_post)
    elif row.channel == "sms":
        d.update(body=row.body)
    else:
        d.update(title=row.title, body=row.body, url=row.url)
    return d


def profile_fields(row: EspRow) -> dict[str, Any]:
    d: dict[str, Any] = {"cgCampaignId": row.campaign_id, "cgMessageId": row.message_id, "cgChannel": row.channel,
                         "cgVariant": row.variant}
    if row.send_at_utc:
        d["cgSendAt"] = send_at(row)
    if row.unsubscribe_url:
        d["cgUnsubscribeUrl"] = row.unsubscribe_url
    return d


def write(exp: Export, rows: Callable[[], Iterable[EspRow]], *, campaign_ids: dict[str, str], with_email: bool,
          **_: Any) -> None:
    ids: dict[str, int] = {}
    for ch, cid in campaign_ids.items():
        try:
            ids[ch] = int(cid)
        except ValueError:
            raise EspExportError(f"Iterable campaign ids are numbers; got {cid!r} for {ch}",
                                 hint="pass --esp-campaign email=123456 with the triggered campaign's id") from None
    who = "email" if with_email else "userId"
    bulk = exp.add(JsonlFile(exp.folder, "users_bulk_update.jsonl", endpoint="POST /api/users/bulkUpdate",
                             what=f"profile data fields, up to {BULK_MAX_USERS} users and 4 MB a request; "
                                  f"users identified by {who}", doc=DOCS["users_bulk_update"]))
    users: list[dict[str, Any]] = []
    size = [len('{"users":[]}')]

    def flush() -> None:
        if users:
            bulk.request({"users": list(users)}, len(users))
            users.clear()
            size[0] = len('{"users":[]}')

    for row in rows():
        user = {who: row.email if with_email else row.member_id, "dataFields": profile_fields(row)}
        n = len(json.dumps(user, ensure_ascii=False).encode()) + 1
        if users and (len(users) == BULK_MAX_USERS or size[0] + n > BULK_MAX_BYTES):
            flush()
        users.append(user)
        size[0] += n
        if row.channel not in ids:
            exp.skip(f"no_campaign_id:{row.channel}")
            continue
        name = f"{row.channel}_target.jsonl"
        if name not in exp.files:
            exp.add(JsonlFile(exp.folder, name, endpoint=f"POST {ENDPOINT[row.channel]}",
                              what=f"one targeted send a line (campaign {ids[row.channel]})",
                              doc=DOCS[f"{row.channel}_target"], campaign_id=ids[row.channel]))
        body: dict[str, Any] = {"campaignId": ids[row.channel]}
        body["recipientEmail" if with_email else "recipientUserId"] = row.email if with_email else row.member_id
        body["dataFields"] = data_fields(row)
        when = send_at(row)
        if when:
            body["sendAt"] = when
        if row.channel in ("email", "push"):
            body["metadata"] = {"contentgen_message_id": row.message_id, "contentgen_campaign_id": row.campaign_id}
        exp.files[name].request(body, 1)  # type: ignore[attr-defined]
    flush()
    for ch in sorted(k.split(":", 1)[1] for k in exp.skipped if k.startswith("no_campaign_id:")):
        exp.notes.append(f"{ch} messages were not written as target requests: pass --esp-campaign {ch}=ID with the "
                         f"id of an Iterable triggered {ch} campaign")
    exp.extra["templates"] = {"email": {"subject": "{{subject}}", "preheader": "{{preheader}}", "html": "{{{html}}}",
                                        "plain text": "{{text}}"},
                              "push": {"title": "{{title}}", "message": "{{body}}", "open url": "{{url}}"},
                              "sms": {"message": "{{body}}"}}
