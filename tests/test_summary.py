"""What the demo shows a newcomer (issue 19): outcome counts with the fallback split and the model's
timeouts, and an e-mail the model wrote next to a fallback one, as members received them."""

from __future__ import annotations

import io
import json

from contentgen.pipeline import RunOptions, run_campaign
from contentgen.sample_data import write_sample_data
from contentgen.summary import examples, model_line, outcome_line, print_side_by_side, read_records
from tests import responders


def _run(tmp_path, fake, responder):
    paths = write_sample_data(tmp_path / "data", 40, seed=3)
    fake.responder = responder
    res = run_campaign(paths["campaign"], RunOptions(out=tmp_path / "out", base_url=fake.base_url, api_key="k"))
    assert res.status == "complete"
    return res


def _mixed(body):
    """Clean drafts for tier-1 members' prompts, surveillance phrasing for everyone else's."""
    text = json.dumps(body)
    return responders.copywriter(body) if "chose basic emails" in text else responders.always_bad(body)


def test_the_summary_counts_personal_and_segment_fallbacks_and_timeouts(tmp_path, fake_openai):
    res = _run(tmp_path, fake_openai, _mixed)
    recs = read_records(res.out)
    line = outcome_line(res.manifest, recs)
    personal = sum(1 for r in recs if r.get("fallback") == "personal")
    assert personal and f"({personal} personal, " in line and "approved" in line
    assert "0 timeouts, 0 retries" in model_line(res.manifest)


def test_a_model_written_email_next_to_a_fallback_one(tmp_path, fake_openai):
    res = _run(tmp_path, fake_openai, _mixed)
    left, right = examples(res.out, read_records(res.out))
    assert left[0].startswith("written by the model (approved")
    assert right[0].startswith("fallback (personal: own picks, explained")
    assert "Why was this recommended? (" in right[1] and "https://athenaplus.example/p/" in right[1]
    out = io.StringIO()
    print_side_by_side(left, right, file=out)
    text = out.getvalue()
    assert "written by the model" in text and "fallback (personal" in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_when_the_model_got_nothing_through_its_draft_is_shown_as_not_sent(tmp_path, fake_openai):
    res = _run(tmp_path, fake_openai, responders.always_bad)
    left, right = examples(res.out, read_records(res.out))
    assert left[0].startswith("the model's last draft for the member on the right (NOT sent: ")
    assert "compliance." in left[0] and right[0].startswith("fallback (")


def test_fallback_records_streams_only_fallbacks_and_counts_like_the_full_read(tmp_path):
    from contentgen.summary import fallback_records

    recs = [{"member_id": "A", "outcome": "fallback", "fallback": "personal"},
            {"member_id": "B", "outcome": "approved", "message": {"body": 'says "outcome": "fallback" in its text'}},
            {"member_id": "C", "outcome": "fallback", "fallback": "segment"},
            {"member_id": "D", "outcome": "fallback", "fallback": "personal"}]
    from contentgen.export import jsonl_line

    (tmp_path / "messages.jsonl").write_text("".join(jsonl_line(r) for r in recs), encoding="utf-8")
    got = list(fallback_records(tmp_path))
    assert [r["member_id"] for r in got] == ["A", "C", "D"]
    manifest = {"counts": {"fallback": 3, "approved": 1}}
    assert outcome_line(manifest, got) == outcome_line(manifest, read_records(tmp_path))
    assert "(2 personal, 1 segment message)" in outcome_line(manifest, got)
    assert list(fallback_records(tmp_path / "missing")) == []
