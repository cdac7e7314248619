"""LLMClient against the fake OpenAI server over real loopback HTTP."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from typing import Any

import pytest

from contentgen.config import LLMSettings
from contentgen.errors import ContentgenError, ProviderMisconfigured, ProviderUnavailable
from contentgen.gates.schema import DRAFT_SCHEMA, validate_draft
from contentgen.llm.budget import RateBudget, parse_reset
from contentgen.llm.client import Completion, LLMClient, ProviderRejected, RequestRejected, TransportFailure
from contentgen.llm.retry import retry_after_s
from tests.fake_openai import FakeOpenAI

KEY = "sk-test-SECRET-0123456789abcdef"
MESSAGES = [{"role": "system", "content": "You write loyalty emails. Return JSON."},
            {"role": "user", "content": "Products:\n- product_id: P100 | name: Kettle\n- product_id: P200 | name: Mug"}]


def make_client(server: FakeOpenAI | str, **overrides: Any) -> LLMClient:
    local = {k: overrides.pop(k) for k in ("local_schema_hint",) if k in overrides}
    settings = LLMSettings(model="fake-model", **{"max_retries": 3, "timeout_s": 5.0, **overrides})
    base = server if isinstance(server, str) else server.base_url
    return LLMClient(settings, base_url=base, api_key=KEY, backoff_initial_s=0.01, backoff_max_s=0.05, **local)


def run(client: LLMClient, coro_fn) -> Any:
    async def main() -> Any:
        try:
            return await coro_fn(client)
        finally:
            await client.aclose()
    return asyncio.run(main())


def complete_once(client: LLMClient, **kw: Any) -> Completion:
    return run(client, lambda c: c.complete(MESSAGES, schema=DRAFT_SCHEMA, **kw))


def chat_times(server: FakeOpenAI) -> list[float]:
    return [r.t for r in server.requests if r.path == "/v1/chat/completions"]


# -- retries ---------------------------------------------------------------------------------------

def test_429_storm_is_ridden_out_honouring_retry_after(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"status": 429, "retry_after": 0.2}] * 3)
    client = make_client(fake_openai)
    comp = complete_once(client)
    assert comp.attempts == 4 and comp.text and validate_draft(comp.text)[1] == []
    t = chat_times(fake_openai)
    assert [r.status for r in fake_openai.requests] == [429, 429, 429, 200]
    assert all(b - a >= 0.2 for a, b in zip(t, t[1:])), [b - a for a, b in zip(t, t[1:])]
    assert client.stats.rate_limited == 3 and client.stats.retries == 3 and client.stats.requests == 4


def test_retry_after_ms_is_honoured(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"status": 429, "retry_after_ms": 250}])
    complete_once(make_client(fake_openai))
    t = chat_times(fake_openai)
    assert len(t) == 2 and t[1] - t[0] >= 0.25


def test_retry_after_http_date_is_honoured(fake_openai: FakeOpenAI) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)   # whole seconds: 1-2 s from now
    fake_openai.script([{"status": 503, "retry_after": when}])
    complete_once(make_client(fake_openai))
    t = chat_times(fake_openai)
    assert len(t) == 2 and t[1] - t[0] >= 0.9


@pytest.mark.parametrize("value,expected", [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None)])
def test_retry_after_seconds_parsing(value: str, expected: float | None) -> None:
    assert retry_after_s({"retry-after": value}) == expected


def test_retry_after_ms_wins_over_seconds() -> None:
    assert retry_after_s({"retry-after": "5", "retry-after-ms": "120"}) == pytest.approx(0.12)
    assert retry_after_s({}) is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(fake_openai: FakeOpenAI, status: int) -> None:
    fake_openai.script([{"status": status}, {"status": status}])
    client = make_client(fake_openai)
    comp = complete_once(client)
    assert comp.attempts == 3 and client.stats.server_errors == 2
    assert [r.status for r in fake_openai.requests] == [status, status, 200]


def test_no_request_is_retried_more_than_max_retries(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"status": 500}] * 10)
    client = make_client(fake_openai, max_retries=2)
    with pytest.raises(TransportFailure) as ei:
        complete_once(client)
    assert len(fake_openai.requests) == 3
    assert ei.value.attempts == 3 and ei.value.kind == "server_error" and ei.value.status == 500
    assert "pending" in ei.value.render()


def test_max_retries_zero_means_one_attempt(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"status": 429, "retry_after": 0.01}] * 3)
    with pytest.raises(TransportFailure) as ei:
        complete_once(make_client(fake_openai, max_retries=0))
    assert len(fake_openai.requests) == 1 and ei.value.kind == "rate_limited"


@pytest.mark.parametrize("status,expected", [(400, RequestRejected), (401, ProviderMisconfigured),
                                             (403, RequestRejected), (404, RequestRejected),
                                             (422, RequestRejected)])
def test_client_errors_are_not_retried(fake_openai: FakeOpenAI, status: int, expected: type) -> None:
    # a set-up refusal leaves the member pending (a TransportFailure); one 401 stops the run at once
    fake_openai.script([{"status": status, "message": f"provider says {status}"}])
    client = make_client(fake_openai)
    with pytest.raises(expected) as ei:
        complete_once(client)
    assert len(fake_openai.requests) == 1 and client.stats.retries == 0
    err = ei.value
    assert f"provider says {status}" in str(err)
    if expected is RequestRejected:
        assert err.status == status and err.fatal and isinstance(err, TransportFailure) and "pending" in str(err)
    if status == 401:
        assert "OPENAI_API_KEY" in str(err) and err.exit_code == 6


@pytest.mark.parametrize("status,message,code", [
    (400, "This model's maximum context length is 128000 tokens. However, your messages resulted in 130020 "
          "tokens.", "context_length_exceeded"),
    (400, "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
     "content_filter"),
    (400, "Invalid prompt: your prompt was flagged as potentially violating our usage policy.", "invalid_prompt"),
])
def test_a_refusal_of_the_content_is_a_failed_attempt(fake_openai: FakeOpenAI, status: int, message: str,
                                                      code: str) -> None:
    fake_openai.script([{"status": status, "message": message, "code": code}] * 4)
    client = make_client(fake_openai)

    async def go(c: LLMClient) -> list[BaseException]:
        out = []
        for _ in range(4):
            try:
                await c.complete(MESSAGES, schema=DRAFT_SCHEMA)
            except Exception as e:  # noqa: BLE001
                out.append(e)
        return out

    errors = run(client, go)
    assert [type(e) for e in errors] == [ProviderRejected] * 4      # never a stop: it is this content's fault
    assert errors[0].fatal is False and errors[0].provider_message == message


def test_an_answer_that_is_not_a_completion_is_rejected(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"raw_body": "<html>welcome to the admin UI</html>"}])
    with pytest.raises(ProviderMisconfigured) as ei:
        complete_once(make_client(fake_openai))
    assert "base-url" in str(ei.value) and len(fake_openai.requests) == 1


def test_hang_past_timeout_is_retried_then_fails(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"hang": 3.0}, {"hang": 3.0}])
    client = make_client(fake_openai, timeout_s=0.3, max_retries=1)
    with pytest.raises(TransportFailure) as ei:
        complete_once(client)
    assert ei.value.kind == "timeout" and ei.value.attempts == 2
    assert client.stats.timeouts == 2 and len(fake_openai.requests) == 2


def test_hang_then_success(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"hang": 3.0}])
    comp = complete_once(make_client(fake_openai, timeout_s=0.3))
    assert comp.attempts == 2 and comp.text


def test_connection_refused_is_a_transport_failure() -> None:
    import socket
    with socket.socket() as s:                      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}/v1", max_retries=1)
    with pytest.raises(TransportFailure) as ei:
        complete_once(client)
    assert ei.value.kind == "connection" and client.stats.connection_errors == 2


# -- outage ----------------------------------------------------------------------------------------

def test_consecutive_failures_trip_provider_unavailable(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"status": 503}] * 3 + [{"content": "{}"}])
    client = make_client(fake_openai, max_retries=0, outage_after=3)

    async def go(c: LLMClient) -> list[BaseException]:
        errors = []
        for _ in range(5):
            try:
                await c.complete(MESSAGES, schema=DRAFT_SCHEMA)
            except Exception as e:        # noqa: BLE001 - collected for the assertions
                errors.append(e)
        return errors

    errors = run(client, go)
    assert [type(e) for e in errors] == [TransportFailure, TransportFailure, ProviderUnavailable,
                                        ProviderUnavailable, ProviderUnavailable]
    assert len(fake_openai.requests) == 3          # later calls never reached the provider
    assert fake_openai.scripted_left == 1
    msg = str(errors[2])
    assert f"provider at {fake_openai.base_url} failed 3 times in a row (last: HTTP 503)" in msg
    assert "re-run the same command to continue" in msg
    assert errors[2].exit_code == 3 and isinstance(errors[2].__cause__, TransportFailure)


def test_a_success_resets_the_failure_count(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"status": 500}, {"status": 500}, {}, {"status": 500}, {"status": 500}, {}])
    client = make_client(fake_openai, max_retries=0, outage_after=3)

    async def go(c: LLMClient) -> list[str]:
        out = []
        for _ in range(6):
            try:
                await c.complete(MESSAGES, schema=DRAFT_SCHEMA)
                out.append("ok")
            except TransportFailure:
                out.append("fail")
        return out

    assert run(client, go) == ["fail", "fail", "ok", "fail", "fail", "ok"]


def test_rejections_do_not_count_towards_an_outage(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"status": 400, "message": f"odd request {w}"} for w in ("a", "b", "c", "d")])
    client = make_client(fake_openai, outage_after=2)

    async def go(c: LLMClient) -> list[type]:
        out = []
        for _ in range(4):
            try:
                await c.complete(MESSAGES, schema=DRAFT_SCHEMA)
            except Exception as e:   # noqa: BLE001
                out.append(type(e))
        return out

    assert run(client, go) == [RequestRejected] * 4     # different refusals: neither an outage nor a stop


# -- structured output -----------------------------------------------------------------------------

def test_json_schema_is_sent_strict(fake_openai: FakeOpenAI) -> None:
    client = make_client(fake_openai, structured_output="json_schema")
    complete_once(client, schema_name="draft")
    rf = fake_openai.requests[0].response_format
    assert rf == {"type": "json_schema", "json_schema": {"name": "draft", "schema": DRAFT_SCHEMA, "strict": True}}
    assert client.stats.structured_mode_used == "json_schema"
    assert fake_openai.requests[0].body["max_tokens"] == 400 and "max_completion_tokens" not in \
        fake_openai.requests[0].body


def test_json_object_puts_schema_in_a_system_note(fake_openai: FakeOpenAI) -> None:
    complete_once(make_client(fake_openai, structured_output="json_object"))
    body = fake_openai.requests[0].body
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system" and '"explanations"' in body["messages"][0]["content"]
    assert body["messages"][0]["content"].startswith(MESSAGES[0]["content"])
    assert len(body["messages"]) == len(MESSAGES)


def test_json_object_schema_hint_for_local_servers(fake_openai: FakeOpenAI) -> None:
    complete_once(make_client(fake_openai, structured_output="json_object", local_schema_hint=True))
    assert fake_openai.requests[0].response_format == {"type": "json_object", "schema": DRAFT_SCHEMA}


def test_auto_downgrades_to_json_object_and_remembers(fake_openai: FakeOpenAI) -> None:
    fake_openai.reject_json_schema = True
    client = make_client(fake_openai, structured_output="auto")

    async def go(c: LLMClient) -> tuple[Completion, Completion]:
        return (await c.complete(MESSAGES, schema=DRAFT_SCHEMA), await c.complete(MESSAGES, schema=DRAFT_SCHEMA))

    first, second = run(client, go)
    kinds = [r.response_format["type"] for r in fake_openai.requests]
    assert kinds == ["json_schema", "json_object", "json_object"]
    assert [r.status for r in fake_openai.requests] == [400, 200, 200]
    assert first.attempts == 2 and second.attempts == 1 and first.text
    assert client.stats.structured_mode_used == "json_object_schema" and client.stats.rejected == 0
    assert fake_openai.requests[1].response_format == {"type": "json_object", "schema": DRAFT_SCHEMA}
    changes = client.capabilities()["changes"]
    assert [(c["what"], c["from"], c["to"]) for c in changes] == [
        ("structured_output", "json_schema", "json_object_schema")] and "HTTP 400" in changes[0]["reason"]


def test_explicit_json_schema_does_not_downgrade(fake_openai: FakeOpenAI) -> None:
    fake_openai.reject_json_schema = True
    with pytest.raises(RequestRejected) as ei:
        complete_once(make_client(fake_openai, structured_output="json_schema"))
    assert ei.value.status == 400 and "response_format" in str(ei.value)


def test_truncated_refusal_and_invalid_json_surface_in_completion(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"content": '{"subject": "trunc', "finish_reason": "length"},
                        {"refusal": "I can't help with that."},
                        {"content": "not json"}])
    client = make_client(fake_openai)

    async def go(c: LLMClient) -> list[Completion]:
        return [await c.complete(MESSAGES, schema=DRAFT_SCHEMA) for _ in range(3)]

    trunc, refusal, invalid = run(client, go)
    assert trunc.finish_reason == "length" and trunc.text == '{"subject": "trunc'
    assert refusal.refusal == "I can't help with that." and refusal.text is None
    assert invalid.text == "not json" and invalid.finish_reason == "stop"
    rules = [validate_draft(c.text, finish_reason=c.finish_reason, refusal=c.refusal)[1][0].rule_id
             for c in (trunc, refusal, invalid)]
    assert rules == ["schema.truncated", "schema.refusal", "schema.invalid-json"]
    assert all(c.attempts == 1 for c in (trunc, refusal, invalid))


# -- usage, budgets, concurrency ---------------------------------------------------------------------

def test_usage_and_cached_tokens_are_recorded(fake_openai: FakeOpenAI) -> None:
    client = make_client(fake_openai)

    async def go(c: LLMClient) -> list[Completion]:
        return [await c.complete(MESSAGES, schema=DRAFT_SCHEMA) for _ in range(3)]

    comps = run(client, go)
    assert comps[0].cached_tokens == 0 and comps[1].cached_tokens > 0     # same system prompt seen before
    assert comps[0].prompt_tokens > 0 and comps[0].completion_tokens > 0
    s = client.stats
    assert s.prompt_tokens == fake_openai.tokens["prompt"] == sum(c.prompt_tokens for c in comps)
    assert s.completion_tokens == fake_openai.tokens["completion"]
    assert s.cached_tokens == fake_openai.tokens["cached"] == comps[1].cached_tokens * 2
    assert comps[0].model == "fake-model" and comps[0].latency_s > 0


def test_concurrency_cap(fake_openai: FakeOpenAI) -> None:
    fake_openai.latency_s = 0.1
    client = make_client(fake_openai, concurrency=3)

    async def go(c: LLMClient) -> list[Completion]:
        return await asyncio.gather(*(c.complete(MESSAGES, schema=DRAFT_SCHEMA) for _ in range(9)))

    assert len(run(client, go)) == 9
    assert fake_openai.max_in_flight() == 3


def test_rate_limiter_keeps_under_enforced_rpm(fake_openai: FakeOpenAI) -> None:
    # the server allows 40 requests in any 2-second window (= 1,200 a minute)
    fake_openai.set_limits(rpm=40, window_s=2.0)
    client = make_client(fake_openai, rpm=1200, concurrency=16)

    async def go(c: LLMClient) -> list[Completion]:
        return await asyncio.gather(*(c.complete(MESSAGES, schema=DRAFT_SCHEMA) for _ in range(60)))

    assert len(run(client, go)) == 60
    assert fake_openai.counts[429] == 0, fake_openai.counts
    assert client.stats.rate_limited == 0


def test_rate_limiter_keeps_under_enforced_tpm(fake_openai: FakeOpenAI) -> None:
    # each answer is ~170 tokens (prompt + completion); the server allows 3,000 tokens per 2 s
    fake_openai.set_limits(tpm=3000, window_s=2.0)
    client = make_client(fake_openai, tpm=90_000, concurrency=16)

    async def go(c: LLMClient) -> list[Completion]:
        return await asyncio.gather(*(c.complete(MESSAGES, schema=DRAFT_SCHEMA, max_tokens=200)
                                      for _ in range(25)))

    comps = run(client, go)
    assert len(comps) == 25 and fake_openai.counts[429] == 0, fake_openai.counts


def test_unconfigured_client_rides_out_an_enforced_limit(fake_openai: FakeOpenAI) -> None:
    # no rpm configured: the client learns from 429 + Retry-After and the x-ratelimit headers
    fake_openai.set_limits(rpm=10, window_s=1.0)
    client = make_client(fake_openai, concurrency=8, max_retries=8)

    async def go(c: LLMClient) -> list[Completion]:
        return await asyncio.gather(*(c.complete(MESSAGES, schema=DRAFT_SCHEMA) for _ in range(25)))

    assert len(run(client, go)) == 25
    assert fake_openai.counts[200] == 25


def test_parse_reset_durations() -> None:
    assert parse_reset("1s") == 1.0 and parse_reset("20ms") == 0.02 and parse_reset("6m0s") == 360.0
    assert parse_reset("1.5s") == 1.5 and parse_reset("2") == 2.0 and parse_reset("1h2m") == 3720.0
    assert parse_reset(None) is None and parse_reset("later") is None


def test_budget_pauses_when_the_provider_says_nothing_is_left() -> None:
    now = [100.0]
    budget = RateBudget(clock=lambda: now[0])
    budget.observe({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": "60s"})
    assert budget._paused_until == pytest.approx(101.0)         # one request's worth: 60 s / 60
    budget.observe({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "1s"})
    assert budget._paused_until == pytest.approx(101.0)


async def _acquire(budget: RateBudget, n: int) -> int:
    return await budget.acquire(n)


def test_budget_token_estimates_are_corrected_from_usage() -> None:
    now = [0.0]
    budget = RateBudget(tpm=6000, clock=lambda: now[0], burst_s=1.0, headroom=1.0)   # 100 tokens/s, cap 100
    assert budget.tokens.level == 0                             # a new budget has no burst saved up
    now[0] += 10.0                                              # refilled to capacity

    async def go() -> None:
        await budget.acquire(500)

    asyncio.run(go())
    assert budget.tokens.level == -400
    budget.settle(500, 150)                                     # refund what was not used
    assert budget.tokens.level == -50
    assert budget.ratio == pytest.approx(0.3)                   # the first answer's ratio: charge less next time
    now[0] += 10.0                                              # refilled to capacity
    charged = asyncio.run(_acquire(budget, 1000))
    assert charged == 300
    budget.settle(1000, 900, charged)                           # then a moving average of what answers use
    assert budget.ratio == pytest.approx(0.6)


# -- secrets ---------------------------------------------------------------------------------------

def test_api_key_never_in_repr_or_logs(fake_openai: FakeOpenAI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake_openai.script([{"status": 429, "retry_after": 0.01}, {"status": 500}, {}, {"status": 401}])
    client = make_client(fake_openai)

    async def go(c: LLMClient) -> list[Any]:
        out: list[Any] = [await c.complete(MESSAGES, schema=DRAFT_SCHEMA)]
        try:
            await c.complete(MESSAGES, schema=DRAFT_SCHEMA)
        except ContentgenError as e:
            out.append(e)
        return out

    comp, err = run(client, go)
    assert KEY not in repr(client) and KEY not in str(client) and KEY not in str(err)
    assert KEY not in repr(comp) and KEY not in repr(client.stats)
    assert caplog.records, "expected debug logs from the client and the SDK"
    for rec in caplog.records:
        assert KEY not in rec.getMessage() and KEY not in str(rec.args)
    assert KEY[-8:] not in caplog.text
