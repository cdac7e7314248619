"""A real LiteLLM proxy (``litellm --config``, the ``litellm`` test extra) in front of the fake server: the
provider's 429 and rate-limit headers reach the client renamed (``llm_provider-retry-after``,
``llm_provider-x-ratelimit-*``) and are honoured; a campaign through the proxy rides out 429s."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from contentgen.cli import cli
from contentgen.config import LLMSettings
from contentgen.gates.schema import DRAFT_SCHEMA
from contentgen.llm.client import LLMClient
from contentgen.llm.local import _free_port
from contentgen.sample_data import write_sample_data
from tests import responders
from tests.util import stop_process, wait_until_ok

if importlib.util.find_spec("litellm") is None:          # not imported here: its import fetches a price map
    pytest.skip("the LiteLLM proxy is the 'litellm' test extra (scripts/setup.sh installs it)",
                allow_module_level=True)

MASTER_KEY = "sk-litellm-test-master-0123456789abcdef"


@pytest.fixture(scope="module")
def litellm_proxy(_fake_openai_server, tmp_path_factory):
    exe = Path(sys.executable).parent / "litellm"
    if not exe.exists():
        exe = Path(shutil.which("litellm") or "litellm")
    tmp = tmp_path_factory.mktemp("litellm")
    (tmp / "config.yaml").write_text(
        "model_list:\n"
        "  - model_name: gpt-4o-mini\n"
        "    litellm_params:\n"
        "      model: openai/fake-model\n"
        f"      api_base: {_fake_openai_server.base_url}\n"
        "      api_key: sk-upstream\n"
        "litellm_settings:\n"
        "  num_retries: 0\n")
    port = _free_port()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
           "LITELLM_MASTER_KEY": MASTER_KEY, "NO_DOCS": "True"}
    log = open(tmp / "proxy.log", "wb")
    proc = subprocess.Popen([str(exe), "--config", str(tmp / "config.yaml"), "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until_ok(f"http://127.0.0.1:{port}/health/liveliness", proc, timeout=120,
                      what="the LiteLLM proxy", log=lambda: (tmp / "proxy.log").read_text()[-3000:])
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(proc, 15)
        log.close()


def _complete(base: str, n: int = 1):
    settings = LLMSettings(model="gpt-4o-mini", max_retries=3, timeout_s=20.0)
    client = LLMClient(settings, base_url=base, api_key=MASTER_KEY, backoff_initial_s=0.01, backoff_max_s=0.05)

    async def main():
        try:
            return [await client.complete([{"role": "user", "content": "- product_id: P1"}], schema=DRAFT_SCHEMA)
                    for _ in range(n)], client
        finally:
            await client.aclose()
    return asyncio.run(main())


def test_a_429_through_the_proxy_waits_as_the_provider_asked(fake_openai, litellm_proxy):
    fake_openai.script([{"status": 429, "retry_after": 2}])
    (comp,), client = _complete(litellm_proxy)
    assert comp.text and client.stats.rate_limited == 1
    t = [r.t for r in fake_openai.requests]
    assert [r.status for r in fake_openai.requests] == [429, 200]       # the proxy did not retry on its own
    assert t[1] - t[0] >= 2.0, t                                        # llm_provider-retry-after: 2


def test_rate_limit_headers_pass_through_the_proxy(fake_openai, litellm_proxy):
    fake_openai.script([{"headers": {"x-ratelimit-limit-requests": "2", "x-ratelimit-remaining-requests": "0",
                                     "x-ratelimit-reset-requests": "2s"}}])
    comps, client = _complete(litellm_proxy, 2)
    t = [r.t for r in fake_openai.requests]
    assert all(c.text for c in comps) and len(t) == 2
    assert t[1] - t[0] >= 0.9, t              # nothing left: wait one request's worth (2 s / 2)


def test_a_campaign_through_the_proxy_rides_out_429s(tmp_path, fake_openai, litellm_proxy):
    paths = write_sample_data(tmp_path / "data", 20, seed=2, bad_rows=False)
    paths["campaign"].write_text(paths["campaign"].read_text() + "llm: {concurrency: 4, max_retries: 6}\n")
    fake_openai.responder = responders.copywriter
    fake_openai.set_faults(rate_429=0.3, retry_after=0.2, seed=3)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["run", str(paths["campaign"]), "--out", str(out), "--base-url", litellm_proxy,
                                 "--api-key", MASTER_KEY, "--model", "gpt-4o-mini"])
    assert r.exit_code == 0, r.output
    assert fake_openai.counts[429] > 0
    recs = [json.loads(x) for x in (out / "messages.jsonl").read_text().splitlines()]
    assert Counter(x["outcome"] for x in recs)["fallback"] == 0 and len(recs) == 20
