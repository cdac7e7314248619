"""One RPM budget for several shard processes (``llm.shared_budget``: a SQLite file), with real separate
processes against the fake server enforcing the account's limit: each shard is configured with the whole
limit; sharing the file keeps them within it together, not sharing does not."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from contentgen.config import LLMSettings, load_campaign
from contentgen.llm.budget import RateBudget, SqliteSharedBudget, make_budget
from contentgen.sample_data import write_sample_data
from tests.util import REPO

SHARD = textwrap.dedent("""
    import asyncio, sys
    from contentgen.config import LLMSettings
    from contentgen.gates.schema import DRAFT_SCHEMA
    from contentgen.llm.client import LLMClient

    base, n, shared = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
    settings = LLMSettings(model="fake-model", rpm=600, concurrency=4, max_retries=12, timeout_s=10,
                           shared_budget=shared)

    async def main():
        client = LLMClient(settings, base_url=base, api_key="k", backoff_initial_s=0.05, backoff_max_s=0.5)
        try:
            for comp in await asyncio.gather(*(client.complete(
                    [{"role": "user", "content": f"- product_id: P{i}"}], schema=DRAFT_SCHEMA) for i in range(n))):
                assert comp.text
        finally:
            await client.aclose()
        print(client.stats.rate_limited)

    asyncio.run(main())
""")


def _shards(fake, n_shards: int, n: int, shared: str) -> list[int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", SHARD, fake.base_url, str(n), shared], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(n_shards)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr[-3000:]
        out.append(int(stdout.split()[-1]))
    return out


@pytest.mark.parametrize("shared", ["sqlite", "postgresql", ""], ids=["shared-budget", "shared-in-postgresql",
                                                                     "each-its-own"])
def test_shard_processes_share_one_rate_limit(tmp_path, fake_openai, shared, request):
    # the account allows 600 requests a minute: 20 in any 2-second window
    fake_openai.set_limits(rpm=20, window_s=2.0)
    where = (request.getfixturevalue("pg_url") if shared == "postgresql"
             else str(tmp_path / "budget.db") if shared == "sqlite" else "")
    rate_limited = _shards(fake_openai, 3, 14, where)
    assert fake_openai.counts[200] == 42
    if shared:
        assert fake_openai.counts[429] == 0 and sum(rate_limited) == 0, fake_openai.counts
    else:   # the control: three shards each pacing at the whole limit run into it
        assert fake_openai.counts[429] > 0


def test_shared_budget_state_is_in_the_file(tmp_path):
    path = tmp_path / "b.db"
    a = SqliteSharedBudget(path, "k", rpm=60, headroom=1.0, burst_s=1.0)
    b = SqliteSharedBudget(path, "k", rpm=60, headroom=1.0, burst_s=1.0)
    try:
        asyncio.run(a.acquire(10))                      # 1 request a second: a waits ~1 s, then spends it
        with b._txn():
            assert b.requests.level == pytest.approx(0.0, abs=0.2)   # b sees what a spent
        b.pause_for(5.0)
        with a._txn():
            assert a._paused_until >= b._clock() + 4.0               # and a sees b's pause
    finally:
        a.close()
        b.close()


def test_campaign_key_resolves_relative_to_the_campaign(tmp_path):
    paths = write_sample_data(tmp_path / "data", 5, seed=1, bad_rows=False)
    paths["campaign"].write_text(paths["campaign"].read_text() + "llm: {shared_budget: budget.db, rpm: 100}\n")
    c = load_campaign(paths["campaign"])
    assert c.llm.shared_budget == paths["campaign"].parent.resolve() / "budget.db"
    budget = make_budget(c.llm, key="x")
    assert isinstance(budget, SqliteSharedBudget)
    budget.close()
    assert type(make_budget(LLMSettings(rpm=100), key="x")) is RateBudget


def test_shared_budget_state_is_in_postgresql(pg_url):
    from contentgen.llm.budget import PostgresSharedBudget

    a = PostgresSharedBudget(pg_url, "k", rpm=60, headroom=1.0, burst_s=1.0)
    b = PostgresSharedBudget(pg_url, "k", rpm=60, headroom=1.0, burst_s=1.0)
    try:
        asyncio.run(a.acquire(10))                      # 1 request a second: a waits ~1 s, then spends it
        with b._txn():
            assert b.requests.level == pytest.approx(0.0, abs=0.2)   # b sees what a spent
        b.pause_for(5.0)
        with a._txn():
            assert a._paused_until >= b._clock() + 4.0               # and a sees b's pause (server clock)
    finally:
        a.close()
        b.close()
    settings = LLMSettings(model="m", rpm=100, shared_budget=pg_url)
    budget = make_budget(settings, key="k2")
    try:
        assert isinstance(budget, PostgresSharedBudget) and settings.shared_budget == pg_url
    finally:
        budget.close()
