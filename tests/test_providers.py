"""Providers as they answer: refused parameters (whatever the status), misconfiguration, proxies' header
names, Azure's URLs and keys, and --max-cost without a price. Error bodies are the providers' own shapes
(llama-cpp-python's 500, a pydantic 422, OpenAI's 400 ``unsupported_parameter``)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.config import LLMSettings
from contentgen.errors import ProviderMisconfigured
from contentgen.gates.schema import DRAFT_SCHEMA
from contentgen.llm.capabilities import rejected_param
from contentgen.llm.client import LLMClient
from contentgen.llm.endpoints import resolve
from contentgen.sample_data import write_sample_data
from tests import responders
from tests.fake_openai import FakeOpenAI

MESSAGES = [{"role": "system", "content": "You write loyalty emails."},
            {"role": "user", "content": "- product_id: P1 | name: Kettle"}]

# llama-cpp-python's server (0.3.x) answering response_format json_schema: HTTP 500, verbatim
LLAMA_CPP_500 = {"status": 500, "type": "internal_server_error", "message": (
    "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), 'msg': "
    "\"Input should be 'text' or 'json_object'\", 'input': 'json_schema', 'ctx': {'expected': \"'text' or "
    "'json_object'\"}}\n\n  File \"llama_cpp/server/app.py\", line 376, in create_chat_completion\n    "
    "POST /v1/chat/completions")}
# OpenAI's reasoning models
MAX_TOKENS_400 = {"status": 400, "param": "max_tokens", "code": "unsupported_parameter", "message": (
    "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.")}
TEMPERATURE_400 = {"status": 400, "param": "temperature", "code": "unsupported_value", "message": (
    "Unsupported value: 'temperature' does not support 0.7 with this model. Only the default (1) value is "
    "supported.")}
# a strict server (pydantic, extra="forbid") refusing llama.cpp's schema field
SCHEMA_FIELD_422 = {"status": 422, "message": "[{'type': 'extra_forbidden', 'loc': ('body', 'response_format', "
                                              "'schema'), 'msg': 'Extra inputs are not permitted'}]"}


def client_for(server: FakeOpenAI | str, **overrides: Any) -> LLMClient:
    settings = LLMSettings(model="fake-model", **{"max_retries": 2, "timeout_s": 5.0, **overrides})
    base = server if isinstance(server, str) else server.base_url
    return LLMClient(settings, base_url=base, api_key="sk-test", backoff_initial_s=0.01, backoff_max_s=0.05)


def complete_n(client: LLMClient, n: int) -> list[Any]:
    async def main() -> list[Any]:
        out: list[Any] = []
        try:
            for _ in range(n):
                try:
                    out.append(await client.complete(MESSAGES, schema=DRAFT_SCHEMA))
                except Exception as e:  # noqa: BLE001 - collected for the assertions
                    out.append(e)
        finally:
            await client.aclose()
        return out
    return asyncio.run(main())


# -- capability negotiation ------------------------------------------------------------------------

def test_llama_cpp_500_on_json_schema_is_a_downgrade_not_an_outage(fake_openai: FakeOpenAI) -> None:
    fake_openai.refuse = {"response_format:json_schema": LLAMA_CPP_500}
    client = client_for(fake_openai, outage_after=1)
    first, second = complete_n(client, 2)
    assert first.text and second.text, (first, second)
    statuses = [r.status for r in fake_openai.requests]
    assert statuses == [500, 200, 200]          # the 500 was read, not retried as an outage
    assert fake_openai.requests[1].response_format == {"type": "json_object", "schema": DRAFT_SCHEMA}
    assert '"explanations"' in fake_openai.requests[1].body["messages"][0]["content"]   # and in the prompt
    caps = client.capabilities()
    assert caps["structured_output"] == "json_object_schema"
    assert caps["changes"][0]["reason"].startswith("HTTP 500") and client.stats.server_errors == 0


def test_every_level_down_to_the_prompt(fake_openai: FakeOpenAI) -> None:
    fake_openai.refuse = {"response_format:json_schema": LLAMA_CPP_500, "response_format.schema": SCHEMA_FIELD_422,
                          "response_format:json_object": {"status": 400, "param": "response_format", "message":
                                                          "response_format is not supported by this backend"}}
    client = client_for(fake_openai)
    (comp,) = complete_n(client, 1)
    assert comp.text and comp.attempts == 4
    assert [r.status for r in fake_openai.requests] == [500, 422, 400, 200]
    assert "response_format" not in fake_openai.requests[-1].body
    assert '"explanations"' in fake_openai.requests[-1].body["messages"][0]["content"]
    assert [c["to"] for c in client.capabilities()["changes"]] == ["json_object_schema", "json_object", "prompt"]


def test_max_completion_tokens_when_the_model_wants_it(fake_openai: FakeOpenAI) -> None:
    fake_openai.refuse = {"max_tokens": MAX_TOKENS_400, "temperature": TEMPERATURE_400}
    client = client_for(fake_openai)
    results = complete_n(client, 3)
    assert all(r.text for r in results), results
    last = fake_openai.requests[-1].body
    assert last["max_completion_tokens"] == 400 and "max_tokens" not in last and "temperature" not in last
    assert [r.status for r in fake_openai.requests] == [400, 400, 200, 200, 200]   # learned once, kept
    assert {c["what"] for c in client.capabilities()["changes"]} == {"token_limit", "temperature"}


def test_reasoning_models_start_with_max_completion_tokens(fake_openai: FakeOpenAI) -> None:
    settings = LLMSettings(model="o3-mini", max_retries=0, timeout_s=5.0)
    client = LLMClient(settings, base_url=fake_openai.base_url, api_key="k")
    complete_n(client, 1)
    assert "max_completion_tokens" in fake_openai.requests[0].body


@pytest.mark.parametrize("status,body,message,expected", [
    (500, None, LLAMA_CPP_500["message"], "response_format"),
    (400, {"param": "max_tokens"}, MAX_TOKENS_400["message"], "max_tokens"),
    (400, None, "Unsupported parameter: 'max_completion_tokens'", "max_completion_tokens"),
    (422, None, "response_format.json_schema: Extra inputs are not permitted", "response_format"),
    (400, None, "Invalid model name passed in model=gpt-x", None),
    (503, None, "The server is overloaded", None),
    (401, None, "Unsupported api key for response_format", None),
])
def test_rejected_param_reads_the_error_whatever_the_status(status: int, body: Any, message: str,
                                                            expected: str | None) -> None:
    assert rejected_param(status, body, message) == expected


# -- misconfiguration stops the run ------------------------------------------------------------------

def _campaign(tmp_path, n=24, llm="{max_retries: 1, concurrency: 4, misconfig_after: 3}"):
    paths = write_sample_data(tmp_path / "data", n, seed=11, bad_rows=False)
    paths["campaign"].write_text(paths["campaign"].read_text() + f"llm: {llm}\n")
    return paths


def _run(paths, out, server: FakeOpenAI | str, *extra: str):
    base = server if isinstance(server, str) else server.base_url
    return CliRunner().invoke(cli, ["run", str(paths["campaign"]), "--out", str(out), "--base-url", base,
                                    "--api-key", "k", "--chunk-size", "8", *extra])


def test_a_provider_refusing_every_request_stops_the_run_and_nobody_goes_to_fallback(tmp_path, fake_openai):
    paths = _campaign(tmp_path)
    # one attempt per member: a refusal taken for a content failure would send members to fallback at once
    paths["campaign"].write_text(paths["campaign"].read_text() + "max_repairs: 0\n")
    out = tmp_path / "out"
    fake_openai.responder = responders.copywriter
    fake_openai.refuse = {"model": {"status": 400, "message": "Invalid model name passed in model=gpt-x. "
                                                              "Call `/v1/models` to view available models."}}
    r = _run(paths, out, fake_openai, "--model", "gpt-x")
    assert r.exit_code == ProviderMisconfigured.exit_code == 6, r.output
    assert "refused 3 request(s) in a row the same way: HTTP 400 Invalid model name" in r.output
    assert "fix:" in r.output and "re-run the same command" in r.output
    assert not (out / "messages.jsonl").exists()
    import sqlite3
    db = sqlite3.connect(out / "run.db")
    outcomes = Counter(o for (o,) in db.execute("SELECT outcome FROM members"))
    db.close()
    assert outcomes["fallback"] == 0 and outcomes["rejected"] == 0, outcomes
    assert len(fake_openai.requests) < 12       # it stopped early, it did not walk every member
    fake_openai.refuse = {}                     # the user fixes the model name
    r = _run(paths, out, fake_openai, "--model", "gpt-x")
    assert r.exit_code == 0, r.output
    recs = [json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()]
    assert Counter(x["outcome"] for x in recs)["fallback"] == 0 and len(recs) == 24


def test_content_refusals_still_go_to_fallback(tmp_path, fake_openai):
    paths = _campaign(tmp_path, 12)
    out = tmp_path / "out"
    fake_openai.refuse = {"model": {"status": 400, "code": "context_length_exceeded", "message":
                                    "This model's maximum context length is 8192 tokens. However, your messages "
                                    "resulted in 9001 tokens."}}
    r = _run(paths, out, fake_openai)
    assert r.exit_code == 0, r.output
    recs = [json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()]
    assert Counter(x["outcome"] for x in recs)["fallback"] > 0


def test_the_manifest_records_the_negotiated_shape(tmp_path, fake_openai):
    paths = _campaign(tmp_path, 8)
    out = tmp_path / "out"
    fake_openai.refuse = {"response_format:json_schema": LLAMA_CPP_500, "max_tokens": MAX_TOKENS_400}
    r = _run(paths, out, fake_openai)
    assert r.exit_code == 0, r.output
    caps = json.loads((out / "manifest.json").read_text())["llm"]["capabilities"]
    assert caps["structured_output"] == "json_object_schema" and caps["token_limit_param"] == "max_completion_tokens"
    assert len(caps["changes"]) == 2                       # each downgrade once, not once per member


# -- --max-cost needs a price ------------------------------------------------------------------------

def test_max_cost_with_an_unpriced_model_refuses_to_start(tmp_path, fake_openai):
    paths = _campaign(tmp_path, 6)
    r = _run(paths, tmp_path / "out", fake_openai, "--model", "my-azure-deployment", "--max-cost", "1")
    assert r.exit_code == 2, r.output
    assert "my-azure-deployment" in r.output and "prices:" in r.output and "Traceback" not in r.output
    assert fake_openai.requests == []


# -- proxies: LiteLLM's renamed headers ----------------------------------------------------------------

def test_litellm_renamed_retry_after_is_honoured(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"status": 429, "headers": {"llm_provider-retry-after": "1"}}])
    (comp,) = complete_n(client_for(fake_openai), 1)
    t = [r.t for r in fake_openai.requests]
    assert comp.text and len(t) == 2 and t[1] - t[0] >= 1.0


def test_litellm_renamed_ratelimit_headers_pause_every_caller(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([{"headers": {"llm_provider-x-ratelimit-limit-requests": "60",
                                     "llm_provider-x-ratelimit-remaining-requests": "0",
                                     "llm_provider-x-ratelimit-reset-requests": "60s"}}])
    results = complete_n(client_for(fake_openai), 2)
    t = [r.t for r in fake_openai.requests]
    assert all(r.text for r in results) and t[1] - t[0] >= 0.9      # one request's worth: 60 s / 60


# -- Azure OpenAI: URLs and the key header, on a loopback capture -------------------------------------

@pytest.mark.parametrize("transport", ["direct", "sdk"])
@pytest.mark.parametrize("form,path,query", [
    ("/openai/deployments/dep-mini?api-version=2024-10-21", "/openai/deployments/dep-mini/chat/completions",
     "api-version=2024-10-21"),
    ("/openai/deployments/dep-mini/", "/openai/deployments/dep-mini/chat/completions", "api-version=2024-10-21"),
    ("", "/openai/deployments/gpt-4o-mini/chat/completions", "api-version=2024-10-21"),
    ("/openai/v1/", "/openai/v1/chat/completions", ""),
])
def test_azure_urls_and_key_header(fake_openai: FakeOpenAI, transport: str, form: str, path: str,
                                   query: str) -> None:
    fake_openai.api_key = "azure-key-123"
    root = fake_openai.base_url[: -len("/v1")]
    settings = LLMSettings(model="gpt-4o-mini", max_retries=0, timeout_s=5.0, transport=transport,
                           azure=True if not form else None)
    client = LLMClient(settings, base_url=root + form, api_key="azure-key-123")
    try:
        (comp,) = complete_n(client, 1)
    finally:
        fake_openai.api_key = None
    assert getattr(comp, "text", None), comp
    chat = [s for s in fake_openai.seen if s["path"].endswith("/chat/completions")]
    assert len(chat) == 1 and chat[0]["path"] == path and chat[0]["query"] == query
    assert chat[0]["headers"]["api-key"] == "azure-key-123"
    assert "?" not in chat[0]["path"] and "api-version" not in chat[0]["path"]


def test_azure_batches_and_files_live_under_openai(fake_openai: FakeOpenAI) -> None:
    root = fake_openai.base_url[: -len("/v1")]
    ep = resolve(root + "/openai/deployments/dep?api-version=2025-03-01-preview", "gpt-4o-mini")
    assert ep.kind == "azure" and ep.deployment == "dep" and ep.query == {"api-version": "2025-03-01-preview"}
    client = LLMClient(LLMSettings(model="gpt-4o-mini"), base_url=root + "/openai/deployments/dep?api-version="
                       "2025-03-01-preview", api_key="k")

    async def go() -> None:
        try:
            await client.sdk.files.create(file=("r.jsonl", b"{}\n"), purpose="batch")
            await client.sdk.batches.list()
        finally:
            await client.aclose()

    asyncio.run(go())
    paths = [(s["method"], s["path"], s["query"]) for s in fake_openai.seen]
    assert ("POST", "/openai/files", "api-version=2025-03-01-preview") in paths
    assert ("GET", "/openai/batches", "api-version=2025-03-01-preview") in paths


def test_plain_openai_compatible_urls_are_left_alone() -> None:
    ep = resolve("http://user:pw@127.0.0.1:8080/v1/", "m")
    assert ep.kind == "openai" and ep.chat_url == "http://127.0.0.1:8080/v1/chat/completions"
    assert ep.auth_headers("k") == {"Authorization": "Bearer k"}
    assert resolve("https://res.openai.azure.com", "m").chat_url == \
        "https://res.openai.azure.com/openai/deployments/m/chat/completions"
