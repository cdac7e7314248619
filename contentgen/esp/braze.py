"""Braze: per-member attributes (REST ``/users/track`` and dashboard CSV import) and the messages as
API-triggered campaign sends scheduled at each member's send time.

Documented shapes this follows (braze.com/docs):

* ``POST /users/track``, https://www.braze.com/docs/api/endpoints/user_data/post_user_track/ : a body of
  ``{"attributes": [...]}``; one of ``external_id``/``user_alias``/``braze_id``/``email``/``phone`` per
  object; 75 objects a request on the default limits, 50 for customers on "Monthly Active Users CY 24-25"
  plans: we write 50 so the file works for both.
* User attributes object, https://www.braze.com/docs/api/objects_filters/user_attributes_object/ : custom
  attributes are plain keys next to ``external_id``; times as ISO 8601 strings.
* Custom attribute data types, https://www.braze.com/docs/user_guide/data/activation/custom_data/data_types/ :
  "String attributes can be up to 255 characters long": the content (HTML, text) therefore cannot be an
  attribute, and every attribute we write is checked against 255.
* CSV import, https://www.braze.com/docs/user_guide/data/unification/user_data/import_users/csv/ :
  ``external_id`` column as the identifier, other columns custom attributes, 500 MB a file.
* Schedule API-triggered campaign messages, ``POST /campaigns/trigger/schedule/create``,
  https://www.braze.com/docs/api/endpoints/messaging/schedule_messages/post_schedule_triggered_campaigns/ :
  ``campaign_id`` (required string), ``recipients`` (at most 50 ``external_user_id`` each with its own
  ``trigger_properties``), ``schedule.time`` ISO 8601, up to 90 days ahead. Recipients object:
  https://www.braze.com/docs/api/objects_filters/recipient_object/ ; trigger properties (at most 50 KB,
  used in the message as ``{{api_trigger_properties.${html}}}``):
  https://www.braze.com/docs/api/objects_filters/trigger_properties_object/ . Members without a send
  time go to ``POST /campaigns/trigger/send`` bodies (same recipients, no schedule).

Why not a catalog: catalog cells hold at most 5,000 characters and catalogs 100 MB (free) to 15 GB (Pro)
in all (https://www.braze.com/docs/user_guide/data/activation/catalogs/create/); 2.3M e-mail bodies of
~20 KB do not fit, and trigger properties carry each member's message with the send itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .files import CsvFile, Export, JsonlFile
from .rows import EspExportError, EspRow

DOCS = {
    "users_track": "https://www.braze.com/docs/api/endpoints/user_data/post_user_track/",
    "user_attributes_object": "https://www.braze.com/docs/api/objects_filters/user_attributes_object/",
    "attribute_data_types": "https://www.braze.com/docs/user_guide/data/activation/custom_data/data_types/",
    "csv_import": "https://www.braze.com/docs/user_guide/data/unification/user_data/import_users/csv/",
    "schedule_triggered_campaign":
        "https://www.braze.com/docs/api/endpoints/messaging/schedule_messages/post_schedule_triggered_campaigns/",
    "send_triggered_campaign":
        "https://www.braze.com/docs/api/endpoints/messaging/send_messages/post_send_triggered_campaigns/",
    "recipients_object": "https://www.braze.com/docs/api/objects_filters/recipient_object/",
    "trigger_properties": "https://www.braze.com/docs/api/objects_filters/trigger_properties_object/",
}
TRACK_BATCH = 50
RECIPIENTS_PER_REQUEST = 50
TRIGGER_PROPERTIES_MAX_BYTES = 50 * 1024
STRING_MAX = 255
BUFFER_BYTES = 64 << 20  # recipients held while grouping by send time before the largest group is flushed

ATTRIBUTE_COLUMNS = ["external_id", "cg_campaign_id", "cg_message_id", "cg_channel", "cg_variant", "cg_send_at",
                     "cg_unsubscribe_url"]


def attributes(row: EspRow, with_email: bool) -> dict[str, Any]:
    a: dict[str, Any] = {"external_id": row.member_id, "cg_campaign_id": row.campaign_id,
                         "cg_message_id": row.message_id, "cg_channel": row.channel, "cg_variant": row.variant}
    if row.send_at_utc:
        a["cg_send_at"] = row.send_at_utc
    if row.unsubscribe_url:
        a["cg_unsubscribe_url"] = row.unsubscribe_url
    if with_email and row.email:
        a["email"] = row.email
    for k, v in a.items():
        if isinstance(v, str) and len(v) > STRING_MAX:
            raise EspExportError(f"member {row.member_id}: Braze string attribute {k} would be {len(v)} characters, "
                                 f"over Braze's {STRING_MAX}", hint="shorten the campaign id or the unsubscribe "
                                 "URL in the campaign's brand settings")
    return a


def trigger_properties(row: EspRow) -> dict[str, Any]:
    p: dict[str, Any] = {"message_id": row.message_id, "campaign_id": row.campaign_id, "variant": row.variant}
    if row.channel == "email":
        p.update(subject=row.subject, preheader=row.preheader, html=row.html, text=row.text,
                 unsubscribe_url=row.unsubscribe_url, list_unsubscribe=row.list_unsubscribe,
                 list_unsubscribe_post=row.list_unsubscribe_post)
    elif row.channel == "sms":
        p.update(body=row.body)
    else:
        p.update(title=row.title, body=row.body, url=row.url)
    return p


def write(exp: Export, rows: Callable[[], Iterable[EspRow]], *, campaign_ids: dict[str, str], with_email: bool,
          **_: Any) -> None:
    users_csv = exp.add(CsvFile(exp.folder, "users.csv", ATTRIBUTE_COLUMNS + (["email"] if with_email else []),
                                what="dashboard CSV import of attributes (Audience > Import Users)",
                                doc=DOCS["csv_import"]))
    track = exp.add(JsonlFile(exp.folder, "users_track.jsonl", endpoint="POST /users/track",
                              what=f"one request body a line, {TRACK_BATCH} attribute objects each",
                              doc=DOCS["users_track"]))
    batch: list[dict[str, Any]] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    sizes: dict[tuple[str, str], int] = {}
    buffered = [0]

    def trigger_file(channel: str, scheduled: bool) -> JsonlFile:
        kind = "schedule" if scheduled else "send"
        name = f"trigger_{kind}_{channel}.jsonl"
        if name not in exp.files:
            exp.add(JsonlFile(exp.folder, name,
                              endpoint="POST /campaigns/trigger/schedule/create" if scheduled
                              else "POST /campaigns/trigger/send",
                              what=f"{channel} messages as API-triggered campaign recipients, "
                                   f"{RECIPIENTS_PER_REQUEST} a request" + (", grouped by send time" if scheduled
                                                                            else ""),
                              doc=DOCS["schedule_triggered_campaign" if scheduled else "send_triggered_campaign"],
                              campaign_id=campaign_ids[channel]))
        return exp.files[name]  # type: ignore[return-value]

    def flush(key: tuple[str, str]) -> None:
        recips = groups.pop(key)
        buffered[0] -= sizes.pop(key)
        channel, when = key
        body: dict[str, Any] = {"campaign_id": campaign_ids[channel], "recipients": recips}
        if when:
            body["schedule"] = {"time": when}
        trigger_file(channel, bool(when)).request(body, len(recips))

    for row in rows():
        a = attributes(row, with_email)
        users_csv.row(a)
        batch.append(a)
        if len(batch) == TRACK_BATCH:
            track.request({"attributes": batch}, len(batch))
            batch = []
        if row.channel not in campaign_ids:
            exp.skip(f"no_campaign_id:{row.channel}")
            continue
        props = trigger_properties(row)
        size = len(json.dumps(props, ensure_ascii=False).encode())
        if size > TRIGGER_PROPERTIES_MAX_BYTES:
            exp.skip("over_braze_trigger_properties_limit")
            exp.notes.append(f"member {row.member_id}: message is {size} bytes of trigger properties, over Braze's "
                             f"50 KB; not in the trigger files")
            continue
        key = (row.channel, row.send_at_utc)
        groups.setdefault(key, []).append({"external_user_id": row.member_id, "trigger_properties": props})
        sizes[key] = sizes.get(key, 0) + size
        buffered[0] += size
        if len(groups[key]) == RECIPIENTS_PER_REQUEST:
            flush(key)
        elif buffered[0] > BUFFER_BYTES:
            flush(max(sizes, key=sizes.get))
    if batch:
        track.request({"attributes": batch}, len(batch))
    for key in list(groups):
        flush(key)
    missing = sorted(k.split(":", 1)[1] for k in exp.skipped if k.startswith("no_campaign_id:"))
    for ch in missing:
        exp.notes.append(f"{ch} messages were not written as trigger requests: pass --esp-campaign {ch}=ID with the "
                         f"id of a Braze API-triggered {ch} campaign")
    exp.extra["templates"] = {
        "email": {"subject": "{{api_trigger_properties.${subject}}}",
                  "preheader": "{{api_trigger_properties.${preheader}}}",
                  "body (HTML editor)": "{{api_trigger_properties.${html}}}",
                  "plaintext": "{{api_trigger_properties.${text}}}",
                  "header List-Unsubscribe": "{{api_trigger_properties.${list_unsubscribe}}}",
                  "header List-Unsubscribe-Post": "{{api_trigger_properties.${list_unsubscribe_post}}}"},
        "push": {"title": "{{api_trigger_properties.${title}}}", "message": "{{api_trigger_properties.${body}}}",
                 "on click": "{{api_trigger_properties.${url}}}"},
        "sms": {"body": "{{api_trigger_properties.${body}}}"},
    }
