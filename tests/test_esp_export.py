"""ESP-ready exports checked against each platform's documented request and import shapes.

The schemas below are transcribed from the platforms' documentation (not from our code):

* Braze ``POST /users/track`` https://www.braze.com/docs/api/endpoints/user_data/post_user_track/ and the user
  attributes object https://www.braze.com/docs/api/objects_filters/user_attributes_object/ ; string attributes
  at most 255 characters https://www.braze.com/docs/user_guide/data/activation/custom_data/data_types/ ;
  CSV import (``external_id`` column) https://www.braze.com/docs/user_guide/data/unification/user_data/import_users/csv/ ;
  ``POST /campaigns/trigger/schedule/create``
  https://www.braze.com/docs/api/endpoints/messaging/schedule_messages/post_schedule_triggered_campaigns/ with
  the recipients object https://www.braze.com/docs/api/objects_filters/recipient_object/ (at most 50 external ids
  a request) and trigger properties (at most 50 KB)
  https://www.braze.com/docs/api/objects_filters/trigger_properties_object/ .
* Iterable API reference https://api.iterable.com/api/docs : ``BulkUpdateUsersRequest`` / ``OptionalApiUser``
  (``POST /api/users/bulkUpdate``, body at most 4MB; email or userId, not both) and ``TargetEmailRequest``,
  ``TargetPushRequest``, ``TargetSMSRequest``, ``TargetInAppRequest`` (``campaignId`` int64 required,
  ``recipientEmail`` or ``recipientUserId`` not both, ``sendAt`` "YYYY-MM-DD HH:MM:SS" UTC).
* Salesforce Marketing Cloud DataExtensionField
  https://developer.salesforce.com/docs/marketing/marketing-cloud/guide/dataextensionfield.html and Fields.Add
  (Text ``MaxLength`` 1..4000)
  https://developer.salesforce.com/docs/marketing/marketing-cloud/guide/ssjs_dataExtensionFieldsAdd.html .
* Klaviyo Bulk Import Profiles ``POST /api/profile-bulk-import-jobs``
  https://developers.klaviyo.com/en/reference/bulk_import_profiles (``ProfileImportJobCreateQuery``; up to
  10,000 profiles, 5MB a request, 100KB a profile).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.email_html import unsubscribe_url
from contentgen.esp import EspExportError, export_esp, parse_campaign_ids, verify_esp
from contentgen.esp import klaviyo as klaviyo_mod
from contentgen.pipeline import RunOptions, run_campaign
from contentgen.sample_data import write_sample_data
from tests import responders

ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"

BRAZE_ATTRIBUTES_OBJECT = {
    "type": "object",
    "anyOf": [{"required": ["external_id"]}, {"required": ["user_alias"]}, {"required": ["braze_id"]},
              {"required": ["email"]}, {"required": ["phone"]}],
    "properties": {"external_id": {"type": "string"}, "email": {"type": "string"}},
    # custom attributes: strings of at most 255 characters, numbers, booleans
    "additionalProperties": {"anyOf": [{"type": "string", "maxLength": 255}, {"type": ["number", "boolean"]}]},
}
BRAZE_USERS_TRACK = {
    "type": "object", "additionalProperties": False,
    "properties": {"attributes": {"type": "array", "minItems": 1, "maxItems": 50, "items": BRAZE_ATTRIBUTES_OBJECT},
                   "events": {"type": "array"}, "purchases": {"type": "array"}},
}
BRAZE_RECIPIENT = {
    "type": "object", "additionalProperties": False,
    "oneOf": [{"required": ["external_user_id"]}, {"required": ["user_alias"]}],
    "properties": {"external_user_id": {"type": "string"}, "user_alias": {"type": "object"},
                   "trigger_properties": {"type": "object"}, "canvas_entry_properties": {"type": "object"}},
}
BRAZE_SCHEDULE_TRIGGERED = {
    "type": "object", "additionalProperties": False, "required": ["campaign_id", "schedule"],
    "properties": {
        "campaign_id": {"type": "string"}, "send_id": {"type": "string"},
        "recipients": {"type": "array", "minItems": 1, "maxItems": 50, "items": BRAZE_RECIPIENT},
        "audience": {"type": "object"}, "broadcast": {"type": "boolean"}, "trigger_properties": {"type": "object"},
        "schedule": {"type": "object", "required": ["time"], "additionalProperties": False,
                     "properties": {"time": {"type": "string", "pattern": ISO_Z},
                                    "in_local_time": {"type": "boolean"}, "at_optimal_time": {"type": "boolean"}}},
    },
}
ITERABLE_BULK_UPDATE = {  # BulkUpdateUsersRequest, OptionalApiUser
    "type": "object", "required": ["users"], "additionalProperties": False,
    "properties": {"createNewFields": {"type": "boolean"}, "users": {"type": "array", "minItems": 1, "items": {
        "type": "object", "additionalProperties": False,
        "oneOf": [{"required": ["email"], "not": {"required": ["userId"]}},
                  {"required": ["userId"], "not": {"required": ["email"]}}],
        "properties": {"dataFields": {"type": "object"}, "email": {"type": "string"},
                       "mergeNestedObjects": {"type": "boolean"}, "preferUserId": {"type": "boolean"},
                       "userId": {"type": "string"}}}}},
}


def iterable_target(metadata: bool) -> dict:
    props = {"allowRepeatMarketingSends": {"type": "boolean"}, "campaignId": {"type": "integer"},
             "dataFields": {"type": "object"}, "recipientEmail": {"type": "string"},
             "recipientUserId": {"type": "string"},
             "sendAt": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"}}
    if metadata:
        props["metadata"] = {"type": "object"}
    return {"type": "object", "required": ["campaignId"], "additionalProperties": False, "properties": props,
            "oneOf": [{"required": ["recipientEmail"], "not": {"required": ["recipientUserId"]}},
                      {"required": ["recipientUserId"], "not": {"required": ["recipientEmail"]}}]}


KLAVIYO_PROFILE = {  # ProfileUpsertQueryResourceObject
    "type": "object", "required": ["type", "attributes"], "additionalProperties": False,
    "properties": {
        "type": {"enum": ["profile"]}, "id": {"type": ["string", "null"]}, "meta": {"type": ["object", "null"]},
        "attributes": {"type": "object", "additionalProperties": False, "properties": {
            k: {"type": ["string", "null"]} for k in ("email", "phone_number", "external_id", "_kx", "first_name",
                                                      "last_name", "organization", "locale", "title", "image")
        } | {"location": {"type": ["object", "null"]}, "properties": {"type": ["object", "null"]}}}},
}
KLAVIYO_JOB = {  # ProfileImportJobCreateQuery
    "type": "object", "required": ["data"], "additionalProperties": False,
    "properties": {"data": {"type": "object", "required": ["type", "attributes"], "additionalProperties": False,
                            "properties": {
                                "type": {"enum": ["profile-bulk-import-job"]},
                                "attributes": {"type": "object", "required": ["profiles"], "properties": {
                                    "profiles": {"type": "object", "required": ["data"], "properties": {
                                        "data": {"type": "array", "maxItems": 10000, "items": KLAVIYO_PROFILE}}}}},
                                "relationships": {"type": "object", "properties": {"lists": {"type": "object",
                                    "properties": {"data": {"type": "array", "items": {
                                        "type": "object", "required": ["type", "id"],
                                        "properties": {"type": {"enum": ["list"]}, "id": {"type": "string"}}}}}}}}}}},
}
SFMC_FIELD_TYPES = {"Text", "Number", "Date", "Boolean", "EmailAddress", "Phone", "Decimal", "Locale"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, _fake_openai_server):
    d = tmp_path_factory.mktemp("esp")
    paths = write_sample_data(d / "data", 150, seed=5)
    fake = _fake_openai_server
    fake.reset()
    fake.responder = responders.copywriter
    try:
        res = run_campaign(paths["campaign"], RunOptions(out=d / "run", base_url=fake.base_url, api_key="k"))
    finally:
        fake.reset()
    assert res.status == "complete"
    return d / "run"


def records(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "messages.jsonl").read_text().splitlines()]


def sent(run: Path) -> dict[str, dict]:
    return {r["member_id"]: r for r in records(run) if r["send"]}


def jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


IDS = {"email": "abc-email-campaign", "push": "abc-push", "sms": "abc-sms", "inapp": "abc-inapp"}


def test_the_run_has_every_channel_and_unsent_members(run_dir):
    recs = records(run_dir)
    assert {r["channel"] for r in recs if r["send"]} >= {"email", "push", "sms", "inapp"}
    assert any(not r["send"] for r in recs)


def test_braze_matches_the_documented_shapes(run_dir, tmp_path):
    m = export_esp(run_dir, "braze", tmp_path, campaign_ids=IDS)
    want = sent(run_dir)
    # /users/track bodies
    seen = Counter()
    for body in jsonl(tmp_path / "users_track.jsonl"):
        jsonschema.validate(body, BRAZE_USERS_TRACK)
        for a in body["attributes"]:
            seen[a["external_id"]] += 1
            assert a["cg_send_at"] == want[a["external_id"]]["send_at_utc"]
            assert a["cg_channel"] == want[a["external_id"]]["channel"]
    assert seen == Counter(list(want))  # every member sent to, once; nobody else
    # CSV import: external_id first, same attributes, every value <= 255 characters
    rows = read_csv(tmp_path / "users.csv")
    assert list(rows[0])[0] == "external_id" and {r["external_id"] for r in rows} == set(want)
    assert all(len(v) <= 255 for r in rows for v in r.values())
    # scheduled API-triggered sends, grouped by send time, <= 50 recipients, trigger properties <= 50 KB
    got = {}
    for ch in ("email", "push", "sms", "inapp"):
        for body in jsonl(tmp_path / f"trigger_schedule_{ch}.jsonl"):
            jsonschema.validate(body, BRAZE_SCHEDULE_TRIGGERED)
            assert body["campaign_id"] == IDS[ch]
            for r in body["recipients"]:
                rec = want[r["external_user_id"]]
                assert rec["channel"] == ch and body["schedule"]["time"] == rec["send_at_utc"]
                assert len(json.dumps(r["trigger_properties"]).encode()) <= 50 * 1024
                got[r["external_user_id"]] = r["trigger_properties"]
    assert set(got) == set(want)
    for mid, props in got.items():
        msg = want[mid]["message"]
        if want[mid]["channel"] == "email":
            assert props["html"] == msg["html"] and props["subject"] == msg["subject"]
            url = unsubscribe_url(msg["footer"])
            assert props["list_unsubscribe"] == f"<{url}>" and url.startswith("https://")
            assert props["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
        elif want[mid]["channel"] == "sms":
            assert props["body"] == msg["text"]
        else:
            assert (props["title"], props["body"], props["url"]) == (msg["title"], msg["body"], msg["url"])
    assert verify_esp(tmp_path)["members"] == len(want) == m["members"]
    assert m["skipped"]["not_sent"] == len(records(run_dir)) - len(want)


def test_braze_without_campaign_ids_writes_attributes_and_says_what_is_missing(run_dir, tmp_path):
    m = export_esp(run_dir, "braze", tmp_path, campaign_ids={"email": "e"})
    assert not (tmp_path / "trigger_schedule_push.jsonl").exists() and (tmp_path / "trigger_schedule_email.jsonl").exists()
    assert any("--esp-campaign push=ID" in n for n in m["notes"])
    assert m["skipped"]["no_campaign_id:push"] == sum(1 for r in sent(run_dir).values() if r["channel"] == "push")


def test_iterable_matches_the_documented_shapes(run_dir, tmp_path):
    ids = {"email": "1001", "push": "1002", "sms": "1003", "inapp": "1004"}
    export_esp(run_dir, "iterable", tmp_path, campaign_ids=ids)
    want = sent(run_dir)
    users = Counter()
    for body in jsonl(tmp_path / "users_bulk_update.jsonl"):
        jsonschema.validate(body, ITERABLE_BULK_UPDATE)
        assert len(json.dumps(body).encode()) <= 4_000_000
        users.update(u["userId"] for u in body["users"])
    assert users == Counter(list(want))
    targets = {}
    for ch in ("email", "push", "sms", "inapp"):
        for body in jsonl(tmp_path / f"{ch}_target.jsonl"):
            jsonschema.validate(body, iterable_target(metadata=ch in ("email", "push")))
            assert body["campaignId"] == int(ids[ch])
            rec = want[body["recipientUserId"]]
            when = dt.datetime.strptime(body["sendAt"], "%Y-%m-%d %H:%M:%S")
            assert when.isoformat() + "Z" == rec["send_at_utc"]
            targets[body["recipientUserId"]] = body["dataFields"]
    assert set(targets) == set(want)
    email = next(mid for mid, r in want.items() if r["channel"] == "email")
    assert targets[email]["html"] == want[email]["message"]["html"]
    assert targets[email]["listUnsubscribePost"] == "List-Unsubscribe=One-Click"


def test_iterable_campaign_ids_must_be_numbers(run_dir, tmp_path):
    with pytest.raises(EspExportError, match="numbers"):
        export_esp(run_dir, "iterable", tmp_path, campaign_ids={"email": "abc"})


def test_sfmc_data_extension_matches_its_definition(run_dir, tmp_path):
    export_esp(run_dir, "sfmc", tmp_path)
    de = json.loads((tmp_path / "data_extension.json").read_text())
    fields = {f["Name"]: f for f in de["Fields"]}
    assert all(f["FieldType"] in SFMC_FIELD_TYPES for f in de["Fields"])
    assert all(0 < f["MaxLength"] <= 4000 for f in de["Fields"] if f["FieldType"] == "Text")
    assert [f["Name"] for f in de["Fields"] if f["IsPrimaryKey"]] == ["SubscriberKey"]
    assert de["IsSendable"] and de["SendableDataExtensionField"]["Name"] in fields
    raw = (tmp_path / "data_extension.csv").read_bytes()
    assert raw.decode("utf-8") and b"\r\n" in raw
    rows = read_csv(tmp_path / "data_extension.csv")
    assert list(rows[0]) == list(fields)  # header names are the field names, in order
    want = sent(run_dir)
    assert {r["SubscriberKey"] for r in rows} == set(want) and len(rows) == len(want)
    for r in rows:
        for name, v in r.items():
            assert len(v) <= fields[name].get("MaxLength", 10 ** 9), name
        for name, f in fields.items():
            assert not f["IsRequired"] or r[name], name
        rec = want[r["SubscriberKey"]]
        if rec["channel"] == "email":  # the split HTML and text put back together are the message's
            html = "".join(r[k] for k in fields if k.startswith("Html_"))
            text = "".join(r[k] for k in fields if k.startswith("Text_"))
            assert html == rec["message"]["html"] and text == rec["message"]["text"]
            assert r["ListUnsubscribe"] == f"<{unsubscribe_url(rec['message']['footer'])}>"
    assert sum(1 for k in fields if k.startswith("Html_")) >= 6  # ~22 KB of MJML output in 4,000-character columns


def test_klaviyo_matches_the_documented_shape_and_limits(run_dir, tmp_path, monkeypatch):
    export_esp(run_dir, "klaviyo", tmp_path, list_id="VRgFBd")
    want = sent(run_dir)
    bodies = jsonl(tmp_path / "profile_bulk_import.jsonl")
    seen = Counter()
    for body in bodies:
        jsonschema.validate(body, KLAVIYO_JOB)
        assert len(json.dumps(body).encode()) <= 5_000_000
        assert body["data"]["relationships"]["lists"]["data"] == [{"type": "list", "id": "VRgFBd"}]
        for p in body["data"]["attributes"]["profiles"]["data"]:
            assert len(json.dumps(p).encode()) <= 100_000
            seen[p["attributes"]["external_id"]] += 1
    assert seen == Counter(list(want))
    # with a smaller payload cap, jobs split and still carry every member once
    monkeypatch.setattr(klaviyo_mod, "MAX_BYTES", 120_000)
    export_esp(run_dir, "klaviyo", tmp_path / "small")
    small = jsonl(tmp_path / "small" / "profile_bulk_import.jsonl")
    assert len(small) > 3 and all(len(json.dumps(b, ensure_ascii=False).encode()) <= 120_000 for b in small)
    assert Counter(p["attributes"]["external_id"] for b in small
                   for p in b["data"]["attributes"]["profiles"]["data"]) == Counter(list(want))


def test_csv_and_parquet_carry_every_sent_member(run_dir, tmp_path):
    import pyarrow.parquet as pq

    export_esp(run_dir, "csv", tmp_path / "csv")
    export_esp(run_dir, "parquet", tmp_path / "pq")
    want = sent(run_dir)
    rows = read_csv(tmp_path / "csv" / "messages.csv")
    assert {r["member_id"]: r["channel"] for r in rows} == {k: v["channel"] for k, v in want.items()}
    t = pq.read_table(tmp_path / "pq" / "messages.parquet")
    assert t.num_rows == len(want) and str(t.schema.field("send_at_utc").type) == "timestamp[us, tz=UTC]"
    by_id = {r["member_id"]: r for r in t.to_pylist()}
    email = next(mid for mid, r in want.items() if r["channel"] == "email")
    assert by_id[email]["html"] == want[email]["message"]["html"]
    assert by_id[email]["send_at_utc"].isoformat().replace("+00:00", "Z") == want[email]["send_at_utc"]


def test_with_email_joins_addresses_from_the_members_file(run_dir, tmp_path):
    m = export_esp(run_dir, "iterable", tmp_path, campaign_ids={"email": "5"}, with_email=True)
    bodies = jsonl(tmp_path / "email_target.jsonl")
    assert bodies and all("@" in b["recipientEmail"] and "recipientUserId" not in b for b in bodies)
    users = [u for b in jsonl(tmp_path / "users_bulk_update.jsonl") for u in b["users"]]
    assert all("email" in u and "userId" not in u for u in users)
    # members without an address in the members file are counted, not silently sent without one
    assert m["members"] + m["skipped"].get("no_email", 0) == len(sent(run_dir))


def test_a_tampered_run_is_refused_and_a_tampered_esp_folder_fails_verify(run_dir, tmp_path):
    export_esp(run_dir, "csv", tmp_path / "csv")
    p = tmp_path / "csv" / "messages.csv"
    p.write_text(p.read_text() + "x")
    with pytest.raises(EspExportError, match="does not match its checksum"):
        verify_esp(tmp_path / "csv")
    import shutil

    bad = tmp_path / "badrun"
    shutil.copytree(run_dir, bad)
    (bad / "messages.jsonl").write_text((bad / "messages.jsonl").read_text().replace('"send": true', '"send": false', 1))
    with pytest.raises(EspExportError, match="does not match its checksum"):
        export_esp(bad, "braze", tmp_path / "b")


def test_cli_export_with_format(run_dir, tmp_path):
    r = CliRunner().invoke(cli, ["export", str(run_dir), "--format", "braze", "--format", "klaviyo",
                                 "--esp-out", str(tmp_path), "--esp-campaign", "email=e1"])
    assert r.exit_code == 0, r.output
    assert "re-exported" in r.output and "braze:" in r.output and "klaviyo:" in r.output
    assert (tmp_path / "braze" / "manifest.json").exists() and (tmp_path / "klaviyo" / "manifest.json").exists()
    r = CliRunner().invoke(cli, ["export", str(run_dir), "--format", "braze", "--esp-campaign", "mail:1"])
    assert r.exit_code == 2 and "CHANNEL=ID" in r.output and "Traceback" not in r.output
    assert parse_campaign_ids(["Email=1", "push = 2"]) == {"email": "1", "push": "2"}


def test_a_message_a_reviewer_rejected_is_not_exported(run_dir, tmp_path):
    """`export --format` re-exports with reviewers' decisions first: a rejected message keeps its text in
    messages.jsonl (send: false) and must not reach any ESP file."""
    import shutil

    from contentgen.store import SqliteStore

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    victim = next(r for r in records(run) if r["send"] and r["channel"] == "email")
    store = SqliteStore(run / "run.db")
    try:
        store.add_decision(victim.get("member_key") or victim["member_id"], "dana", "reject", "off-brand", "h")
    finally:
        store.close()
    r = CliRunner().invoke(cli, ["export", str(run), "--format", "csv", "--format", "braze",
                                 "--esp-campaign", "email=e1"])
    assert r.exit_code == 0, r.output
    rec = next(x for x in records(run) if x["member_id"] == victim["member_id"])
    assert rec["outcome"] == "rejected" and rec["send"] is False and rec["message"]
    assert victim["member_id"] not in {x["member_id"] for x in read_csv(run / "esp" / "csv" / "messages.csv")}
    braze_ids = {x["external_user_id"] for b in jsonl(run / "esp" / "braze" / "trigger_schedule_email.jsonl")
                 for x in b["recipients"]}
    assert victim["member_id"] not in braze_ids and len(braze_ids) > 0
