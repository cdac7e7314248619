"""Klaviyo: the messages as custom profile properties, in Bulk Import Profiles jobs.

Documented shape this follows: ``POST https://a.klaviyo.com/api/profile-bulk-import-jobs``
(https://developers.klaviyo.com/en/reference/bulk_import_profiles; OpenAPI
``ProfileImportJobCreateQuery`` in klaviyo/openapi ``bulk_import_profiles.json``): a JSON:API body
``{"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [{"type": "profile",
"attributes": {"external_id", "email", "properties": {...}}}]}}, "relationships": {"lists": {"data":
[{"type": "list", "id"}]}}}}``, content type ``application/vnd.api+json`` and a ``revision`` header.
"Accepts up to 10,000 profiles per request. The maximum allowed payload size is 5MB. The maximum allowed
payload size per-profile is 100KB." The job upserts (updates a matching profile, else creates one); the
optional list relationship (``--esp-list ID``) adds the profiles to a list a campaign can target.
Guide: https://developers.klaviyo.com/en/docs/use_klaviyos_bulk_profile_import_api
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .files import Export, JsonlFile
from .rows import EspRow

DOCS = {"bulk_import_profiles": "https://developers.klaviyo.com/en/reference/bulk_import_profiles",
        "guide": "https://developers.klaviyo.com/en/docs/use_klaviyos_bulk_profile_import_api"}
MAX_PROFILES = 10_000
MAX_BYTES = 5_000_000
MAX_PROFILE_BYTES = 100_000


def profile(row: EspRow, with_email: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"cg_campaign_id": row.campaign_id, "cg_message_id": row.message_id,
                             "cg_channel": row.channel, "cg_variant": row.variant}
    if row.send_at_utc:
        props["cg_send_at"] = row.send_at_utc
    if row.channel == "email":
        props.update(cg_subject=row.subject, cg_preheader=row.preheader, cg_html=row.html, cg_text=row.text,
                     cg_unsubscribe_url=row.unsubscribe_url, cg_list_unsubscribe=row.list_unsubscribe,
                     cg_list_unsubscribe_post=row.list_unsubscribe_post)
    elif row.channel == "sms":
        props.update(cg_body=row.body)
    else:
        props.update(cg_title=row.title, cg_body=row.body, cg_url=row.url)
    attrs: dict[str, Any] = {"external_id": row.member_id}
    if with_email and row.email:
        attrs["email"] = row.email
    attrs["properties"] = props
    return {"type": "profile", "attributes": attrs}


def job(profiles: list[dict[str, Any]], list_id: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": profiles}}}
    if list_id:
        data["relationships"] = {"lists": {"data": [{"type": "list", "id": list_id}]}}
    return {"data": data}


def write(exp: Export, rows: Callable[[], Iterable[EspRow]], *, with_email: bool, list_id: str | None = None,
          **_: Any) -> None:
    out = exp.add(JsonlFile(exp.folder, "profile_bulk_import.jsonl", endpoint="POST /api/profile-bulk-import-jobs",
                            what=f"one job body a line: up to {MAX_PROFILES} profiles and 5 MB each",
                            doc=DOCS["bulk_import_profiles"], content_type="application/vnd.api+json",
                            revision="2026-04-15"))
    frame = len(json.dumps(job([], list_id)).encode())
    batch: list[dict[str, Any]] = []
    size = frame
    for row in rows():
        p = profile(row, with_email)
        n = len(json.dumps(p, ensure_ascii=False).encode()) + 1
        if n > MAX_PROFILE_BYTES:
            exp.skip("over_klaviyo_profile_limit")
            exp.notes.append(f"member {row.member_id}: profile is {n} bytes, over Klaviyo's 100 KB; not written")
            continue
        if batch and (len(batch) == MAX_PROFILES or size + n > MAX_BYTES):
            out.request(job(batch, list_id), len(batch))
            batch, size = [], frame
        batch.append(p)
        size += n
    if batch:
        out.request(job(batch, list_id), len(batch))
    exp.extra["templates"] = {"email": {"subject": "{{ person|lookup:'cg_subject' }}",
                                        "preview text": "{{ person|lookup:'cg_preheader' }}",
                                        "html (HTML template)": "{{ person|lookup:'cg_html'|safe }}"}}
    if not list_id:
        exp.notes.append("no --esp-list: profiles are upserted but not added to a list")
