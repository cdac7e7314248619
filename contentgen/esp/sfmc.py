"""Salesforce Marketing Cloud: a sendable data extension, as the CSV to import and its field definitions.

Documented shapes this follows (developer.salesforce.com):

* DataExtensionField, https://developer.salesforce.com/docs/marketing/marketing-cloud/guide/dataextensionfield.html :
  ``Name``, ``FieldType``, ``MaxLength``, ``IsPrimaryKey``, ``IsRequired``; and Fields.Add,
  https://developer.salesforce.com/docs/marketing/marketing-cloud/guide/ssjs_dataExtensionFieldsAdd.html :
  "For a Text field, the value must be an integer that's greater than 0 and less than or equal to 4000".
  An e-mail's HTML is longer than 4,000 characters, so it is cut into ``Html_1``..``Html_N`` columns of at
  most 4,000 (and the text part into ``Text_1``..), which the e-mail puts back together in order.
* The data extension definition (``data_extension.json``) is the DataExtension object shape: ``Name``,
  ``CustomerKey``, ``IsSendable``, ``SendableDataExtensionField`` (``SubscriberKey``) related to the
  ``SendableSubscriberField`` "Subscriber Key", and ``Fields``.
* The CSV: comma-delimited, double-quote text qualifier, UTF-8, a header row whose names are the field
  names (Import Data Extension in Contact Builder / Email Studio, or an Import activity from the SFTP).

In the e-mail, the content is written out with AMPscript ``%%=v(@html)=%%`` style output of the fields
(``AttributeValue`` output is not evaluated again as AMPscript): see ``templates`` in the manifest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from .files import CsvFile, Export, OutFile
from .rows import EspExportError, EspRow

DOCS = {
    "data_extension_field": "https://developer.salesforce.com/docs/marketing/marketing-cloud/guide/dataextensionfield.html",
    "fields_add_maxlength":
        "https://developer.salesforce.com/docs/marketing/marketing-cloud/guide/ssjs_dataExtensionFieldsAdd.html",
}
TEXT_MAX = 4000


def chunks(text: str, size: int = TEXT_MAX) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def fields(n_html: int, n_text: int, with_email: bool) -> list[dict[str, Any]]:
    def f(name: str, length: int | None, kind: str = "Text", pk: bool = False, required: bool = False):
        d: dict[str, Any] = {"Name": name, "FieldType": kind, "IsPrimaryKey": pk, "IsRequired": required or pk}
        if length:
            d["MaxLength"] = length
        return d

    out = [f("SubscriberKey", 254, pk=True)]
    if with_email:
        out.append(f("EmailAddress", 254, "EmailAddress", required=True))
    out += [f("MessageId", 24, required=True), f("CampaignId", 200, required=True), f("Channel", 10, required=True),
            f("Variant", 100), f("SendAtUTC", 20), f("Subject", 500), f("Preheader", 500)]
    out += [f(f"Html_{i}", TEXT_MAX) for i in range(1, n_html + 1)]
    out += [f(f"Text_{i}", TEXT_MAX) for i in range(1, n_text + 1)]
    out += [f("Title", 500), f("Body", 2000), f("Url", 1000), f("UnsubscribeUrl", 1000), f("ListUnsubscribe", 1000),
            f("ListUnsubscribePost", 50)]
    return out


def values(row: EspRow, n_html: int, n_text: int) -> dict[str, Any]:
    v: dict[str, Any] = {"SubscriberKey": row.member_id, "EmailAddress": row.email, "MessageId": row.message_id,
                         "CampaignId": row.campaign_id, "Channel": row.channel, "Variant": row.variant,
                         "SendAtUTC": row.send_at_utc, "Subject": row.subject, "Preheader": row.preheader,
                         "Title": row.title, "Body": row.body, "Url": row.url, "UnsubscribeUrl": row.unsubscribe_url,
                         "ListUnsubscribe": row.list_unsubscribe, "ListUnsubscribePost": row.list_unsubscribe_post}
    for prefix, text, n in (("Html", row.html, n_html), ("Text", row.text, n_text)):
        parts = chunks(text) if text else []
        for i in range(1, n + 1):
            v[f"{prefix}_{i}"] = parts[i - 1] if i <= len(parts) else ""
    return v


def write(exp: Export, rows: Callable[[], Iterable[EspRow]], *, with_email: bool, **_: Any) -> None:
    n_html = n_text = 1
    for row in rows():  # first pass: how many 4,000-character columns the longest message needs
        n_html = max(n_html, len(chunks(row.html)))
        n_text = max(n_text, len(chunks(row.text)))
    defs = fields(n_html, n_text, with_email)
    limits = {d["Name"]: d.get("MaxLength") for d in defs}
    name = "contentgen_" + re.sub(r"[^A-Za-z0-9_]", "_", exp.src.campaign_id)[:100]
    definition = {"Name": name, "CustomerKey": name, "Description": f"contentgen messages of {exp.src.campaign_id}",
                  "IsSendable": True, "IsTestable": True,
                  "SendableDataExtensionField": {"Name": "SubscriberKey"},
                  "SendableSubscriberField": {"Name": "Subscriber Key"}, "Fields": defs}
    csv_file = exp.add(CsvFile(exp.folder, "data_extension.csv", [d["Name"] for d in defs],
                               what="rows to import into the data extension (comma, double-quote qualifier, UTF-8)",
                               doc=DOCS["data_extension_field"], data_extension=name))
    for row in rows():
        v = values(row, n_html, n_text)
        for k, val in v.items():
            lim = limits.get(k)
            if lim and isinstance(val, str) and len(val) > lim:
                raise EspExportError(f"member {row.member_id}: {k} is {len(val)} characters, over the data "
                                     f"extension's {lim}", hint="shorten it in the campaign settings")
        csv_file.row(v)
    d = exp.add(OutFile(exp.folder, "data_extension.json", what="the data extension to create (fields, sendable "
                        "relationship)", doc=DOCS["fields_add_maxlength"]))
    d.write(json.dumps(definition, indent=2) + "\n")
    html = "".join(f'%%=v(AttributeValue("Html_{i}"))=%%' for i in range(1, n_html + 1))
    text = "".join(f'%%=v(AttributeValue("Text_{i}"))=%%' for i in range(1, n_text + 1))
    exp.extra["data_extension"] = name
    exp.extra["templates"] = {"email": {"subject": "%%=v(AttributeValue(\"Subject\"))=%%",
                                        "preheader": "%%=v(AttributeValue(\"Preheader\"))=%%",
                                        "html (paste HTML email)": html, "text": text}}
    exp.notes.append(f"HTML is split into {n_html} column(s) and the text part into {n_text} of at most {TEXT_MAX} "
                     "characters (SFMC's Text field limit); the templates concatenate them in order")
