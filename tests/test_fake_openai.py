"""The fake OpenAI server itself, driven by the openai SDK and plain httpx over loopback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from contentgen.gates.schema import validate_draft
from tests.fake_openai import FakeOpenAI, echo_responder

ROOT = Path(__file__).resolve().parent.parent
BODY = {"model": "fake-model", "messages": [{"role": "user", "content": "- product_id: P9 | name: Lamp"}]}


def sdk(server: FakeOpenAI, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-x", max_retries=0, **kw)


def post(server: FakeOpenAI, body: dict | None = None) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json=body or BODY, timeout=10)


def test_chat_completion_shape_and_usage(fake_openai: FakeOpenAI) -> None:
    comp = sdk(fake_openai).chat.completions.create(model="m", messages=BODY["messages"])
    assert comp.object == "chat.completion" and comp.model == "m"
    assert comp.choices[0].finish_reason == "stop" and comp.choices[0].message.refusal is None
    assert comp.usage.prompt_tokens > 0 and comp.usage.prompt_tokens_details.cached_tokens == 0
    assert comp.usage.total_tokens == comp.usage.prompt_tokens + comp.usage.completion_tokens
    draft, findings = validate_draft(comp.choices[0].message.content)
    assert findings == [] and [e.product_id for e in draft.explanations] == ["P9"]
    assert [m.id for m in sdk(fake_openai).models.list()] == ["fake-model"]


def test_echo_responder_finds_product_ids_in_order() -> None:
    body = {"messages": [{"role": "system", "content": "product_id: SYS1"},
                         {"role": "user", "content": "- product_id: P2 | x\n- product_id: P1\n- product_id: P2"}]}
    ids = [e["product_id"] for e in json.loads(echo_responder(body))["explanations"]]
    assert ids == ["SYS1", "P2", "P1"]


def test_script_is_consumed_in_order_with_headers(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"status": 429, "retry_after": 0.2}, {"status": 429, "retry_after_ms": 150},
                        {"status": 400, "message": "bad thing"}, {"content": "not json"},
                        {"refusal": "I can't"}, {"content": '{"subject": "trunc', "finish_reason": "length"}])
    r = [post(fake_openai) for _ in range(7)]
    assert [x.status_code for x in r] == [429, 429, 400, 200, 200, 200, 200]
    assert r[0].headers["retry-after"] == "0.2" and r[1].headers["retry-after-ms"] == "150"
    assert r[0].json()["error"]["code"] == "rate_limit_exceeded"
    assert r[2].json()["error"]["message"] == "bad thing"
    assert r[3].json()["choices"][0]["message"]["content"] == "not json"
    msg = r[4].json()["choices"][0]["message"]
    assert msg == {"role": "assistant", "content": None, "refusal": "I can't"}
    assert r[5].json()["choices"][0]["finish_reason"] == "length"
    assert validate_draft(r[6].json()["choices"][0]["message"]["content"])[1] == []   # back to the responder
    assert fake_openai.counts == {429: 2, 400: 1, 200: 4}
    assert [rec.status for rec in fake_openai.requests] == [x.status_code for x in r]


def test_delay_and_hang(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"delay": 0.2}, {"hang": 2.0}])
    assert post(fake_openai).status_code == 200
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{fake_openai.base_url}/chat/completions", json=BODY, timeout=0.3)
    # asyncio may wake a timer a clock tick early (its clock resolution): allow that much
    assert fake_openai.requests[0].t_done - fake_openai.requests[0].t >= 0.2 - 0.005


def test_custom_responder_str_or_spec(fake_openai: FakeOpenAI) -> None:
    seen = []
    fake_openai.responder = lambda body: seen.append(body) or "hello"
    assert post(fake_openai).json()["choices"][0]["message"]["content"] == "hello"
    fake_openai.responder = lambda body: {"status": 503}
    assert post(fake_openai).status_code == 503
    fake_openai.responder = lambda body: {"content": "x", "prompt_tokens": 7, "completion_tokens": 3,
                                          "cached_tokens": 2}
    usage = post(fake_openai).json()["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["prompt_tokens_details"]["cached_tokens"]) \
        == (7, 3, 2)
    assert seen[0]["messages"] == BODY["messages"]


def test_cached_tokens_for_a_repeated_system_prompt(fake_openai: FakeOpenAI) -> None:
    body = {"model": "m", "messages": [{"role": "system", "content": "S" * 400}, {"role": "user", "content": "hi"}]}
    first, second = post(fake_openai, body).json(), post(fake_openai, body).json()
    assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] > 100
    assert fake_openai.tokens["cached"] == second["usage"]["prompt_tokens_details"]["cached_tokens"]


def test_faults_are_seeded_and_reproducible(fake_openai: FakeOpenAI) -> None:
    def draw() -> list[int]:
        fake_openai.reset()
        fake_openai.set_faults(rate_429=0.2, rate_500=0.1, rate_503=0.1, seed=7, retry_after=0.05)
        return [post(fake_openai).status_code for _ in range(40)]

    a, b = draw(), draw()
    assert a == b and {429, 500, 503, 200} <= set(a)


def test_enforced_limits_and_headers(fake_openai: FakeOpenAI) -> None:
    fake_openai.set_limits(rpm=3, tpm=100_000, window_s=30)
    r = [post(fake_openai) for _ in range(4)]
    assert [x.status_code for x in r] == [200, 200, 200, 429]
    h = r[0].headers
    assert h["x-ratelimit-limit-requests"] == "3" and h["x-ratelimit-remaining-requests"] == "2"
    assert h["x-ratelimit-limit-tokens"] == "100000" and int(h["x-ratelimit-remaining-tokens"]) < 100_000
    assert h["x-ratelimit-reset-requests"].endswith("s")
    assert r[2].headers["x-ratelimit-remaining-requests"] == "0"
    assert 28_000 <= int(r[3].headers["retry-after-ms"]) <= 30_000 and r[3].headers["retry-after"] == "30"


def test_token_limit_in_a_short_window(fake_openai: FakeOpenAI) -> None:
    fake_openai.responder = lambda body: {"content": "x", "prompt_tokens": 40, "completion_tokens": 10}
    fake_openai.set_limits(tpm=100, window_s=0.3)
    assert [post(fake_openai).status_code for _ in range(3)] == [200, 200, 429]
    time.sleep(0.35)
    assert post(fake_openai).status_code == 200                 # the window slid past


def test_reject_json_schema_and_response_format_log(fake_openai: FakeOpenAI) -> None:
    fake_openai.reject_json_schema = True
    schema_fmt = {"type": "json_schema", "json_schema": {"name": "m", "schema": {"type": "object"}}}
    r = post(fake_openai, {**BODY, "response_format": schema_fmt})
    assert r.status_code == 400 and "response_format" in r.json()["error"]["message"]
    assert post(fake_openai, {**BODY, "response_format": {"type": "json_object"}}).status_code == 200
    assert [q.response_format for q in fake_openai.requests] == [schema_fmt, {"type": "json_object"}]


def test_api_key_check(fake_openai: FakeOpenAI) -> None:
    fake_openai.api_key = "sk-right"
    try:
        with pytest.raises(openai.AuthenticationError):
            sdk(fake_openai).chat.completions.create(model="m", messages=BODY["messages"])
        ok = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-right", max_retries=0)
        assert ok.chat.completions.create(model="m", messages=BODY["messages"]).choices
    finally:
        fake_openai.api_key = None


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _line(cid: str, text: str) -> dict:
    return {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "fake-model", "messages": [{"role": "user", "content": text}]}}


def _wait_batch(client: openai.OpenAI, batch_id: str, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "cancelled", "expired") or time.monotonic() > deadline:
            return batch
        time.sleep(0.02)


def test_files_and_batches_round_trip_with_the_sdk(fake_openai: FakeOpenAI) -> None:
    fake_openai.batch_delay_s = 0.05
    fake_openai.responder = lambda body: ({"status": 400, "message": "no"} if "FAIL" in
                                          body["messages"][-1]["content"] else echo_responder(body))
    client = sdk(fake_openai)
    rows = [_line("m-1", "product_id: A1"), _line("m-2", "please FAIL"), _line("m-3", "product_id: C3")]
    up = client.files.create(file=("in.jsonl", io.BytesIO(_jsonl(rows))), purpose="batch")
    assert up.purpose == "batch" and up.bytes == len(_jsonl(rows)) and up.id.startswith("file-")
    assert client.files.content(up.id).content == _jsonl(rows)
    batch = client.batches.create(input_file_id=up.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"run": "r1"})
    assert batch.status in ("validating", "in_progress") and batch.metadata == {"run": "r1"}
    done = _wait_batch(client, batch.id)
    assert done.status == "completed" and done.completed_at
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (3, 2, 1)
    out = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    err = [json.loads(x) for x in client.files.content(done.error_file_id).text.splitlines()]
    by_id = {o["custom_id"]: o for o in out}
    assert set(by_id) == {"m-1", "m-3"} and err[0]["custom_id"] == "m-2"
    body = by_id["m-3"]["response"]["body"]
    assert by_id["m-3"]["response"]["status_code"] == 200 and by_id["m-3"]["error"] is None
    assert json.loads(body["choices"][0]["message"]["content"])["explanations"][0]["product_id"] == "C3"
    assert err[0]["response"]["status_code"] == 400 and err[0]["response"]["body"]["error"]["message"] == "no"
    assert client.files.retrieve(done.output_file_id).purpose == "batch_output"
    assert [b.id for b in client.batches.list()] == [batch.id]


def test_batch_cancel_and_invalid_input(fake_openai: FakeOpenAI) -> None:
    fake_openai.batch_delay_s = 5.0
    client = sdk(fake_openai)
    good = client.files.create(file=("a.jsonl", io.BytesIO(_jsonl([_line("x", "hi")]))), purpose="batch")
    batch = client.batches.create(input_file_id=good.id, endpoint="/v1/chat/completions", completion_window="24h")
    cancelled = client.batches.cancel(batch.id)
    assert cancelled.status == "cancelled" and cancelled.output_file_id is None
    bad = client.files.create(file=("b.jsonl", io.BytesIO(b'{"custom_id": "x"}\nnot json\n')), purpose="batch")
    failed = _wait_batch(client, client.batches.create(input_file_id=bad.id, endpoint="/v1/chat/completions",
                                                       completion_window="24h").id)
    assert failed.status == "failed" and {e.line for e in failed.errors.data} == {1, 2}
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")


def test_runs_standalone_and_takes_config_over_http() -> None:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.fake_openai", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{base}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "standalone server did not start"
            time.sleep(0.05)
        httpx.post(f"{base}/_fake/config", json={"script": [{"status": 503}]}).raise_for_status()
        assert httpx.post(f"{base}/v1/chat/completions", json=BODY).status_code == 503
        assert httpx.post(f"{base}/v1/chat/completions", json=BODY).status_code == 200
        assert httpx.get(f"{base}/_fake/stats").json()["counts"] == {"503": 1, "200": 1}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_batch_endings_follow_the_documented_shapes(fake_openai):
    """An expired batch: partial output file, the rest in the error file as ``batch_expired`` lines."""
    lines = "".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                                "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}}) + "\n"
                    for i in range(4))
    fake_openai.batch_delay_s = 0.01
    fake_openai.batch_plan.append({"outcome": "expired", "answer": 0.5})
    base = fake_openai.base_url
    fid = httpx.post(f"{base}/files", files={"file": ("in.jsonl", lines.encode())},
                     data={"purpose": "batch"}).json()["id"]
    b = httpx.post(f"{base}/batches", json={"input_file_id": fid, "endpoint": "/v1/chat/completions",
                                             "completion_window": "24h"}).json()
    deadline = time.monotonic() + 10
    while b["status"] not in ("expired", "completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.02)
        b = httpx.get(f"{base}/batches/{b['id']}").json()
    assert b["status"] == "expired" and b["expired_at"] and b["request_counts"] == {"total": 4, "completed": 2,
                                                                                     "failed": 2}
    errors = [json.loads(x) for x in httpx.get(f"{base}/files/{b['error_file_id']}/content").text.splitlines()]
    assert [e["custom_id"] for e in errors] == ["r2", "r3"]
    assert all(e["response"] is None and e["error"]["code"] == "batch_expired" for e in errors)
    assert "_tokens" not in b                      # nothing but the API's fields
