"""Does a process pool for the gates pay off on this 2-core machine? Measured, not assumed.

    .venv/bin/python benchmarks/bench_gate_pool.py            # ~2 min; --n 3000 --repeat 3

One event loop does what a member does per attempt: one chat completion
through ``LLMClient`` against the fake OpenAI server (another process, no added
latency), then the four gates on a message built from the labelled cases
(``bench_gates.corpus``). Either the gates run inline on the loop, or the
message and its context are pickled to a ``ProcessPoolExecutor`` worker that
loaded the rules once (``run_in_executor``). Modes alternate, ``--repeat``
times; it prints attempts/s for each and the ratio pool / inline, and the time
the loop spends blocked per attempt in each mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_gates import corpus  # noqa: E402

from contentgen.config import LLMSettings  # noqa: E402
from contentgen.gates import load_rules, run_gates  # noqa: E402
from contentgen.gates.schema import DRAFT_SCHEMA  # noqa: E402
from contentgen.llm.client import LLMClient  # noqa: E402

_RULES = None


def _init() -> None:
    global _RULES
    _RULES = load_rules()


def _gate(msg, ctx) -> int:
    return len(run_gates(msg, ctx, _RULES))


async def one_mode(url: str, items, n: int, concurrency: int, pool: ProcessPoolExecutor | None) -> float:
    client = LLMClient(LLMSettings(concurrency=concurrency, max_retries=2), base_url=url, api_key="bench",
                       model="gpt-4o-mini")
    rules = None if pool else load_rules()
    sem = asyncio.Semaphore(concurrency * 2)
    loop = asyncio.get_running_loop()
    messages = [{"role": "system", "content": "You write short loyalty emails."},
                {"role": "user", "content": "Products (1):\n- product_id: P1 | name: Trail shoe | price: 89"}]

    async def attempt(i: int) -> None:
        async with sem:
            await client.complete(messages, schema=DRAFT_SCHEMA)
            msg, ctx = items[i % len(items)]
            if pool is None:
                run_gates(msg, ctx, rules)
            else:
                await loop.run_in_executor(pool, _gate, msg, ctx)

    t0 = time.perf_counter()
    await asyncio.gather(*(attempt(i) for i in range(n)))
    wall = time.perf_counter() - t0
    await client.aclose()
    return n / wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--workers", type=int, default=1)
    a = ap.parse_args()
    print("$ .venv/bin/python benchmarks/bench_gate_pool.py " + " ".join(sys.argv[1:]))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tests.fake_openai", "--port", str(port)],
                              env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    server.stdout.readline()
    time.sleep(1.0)
    url = f"http://127.0.0.1:{port}/v1"
    items = corpus(500)
    rates: dict[str, list[float]] = {"inline": [], "pool": []}
    try:
        with ProcessPoolExecutor(max_workers=a.workers, initializer=_init) as pool:
            pool.submit(_gate, *items[0]).result()  # the worker is up and has its rules
            for rep in range(a.repeat):
                for mode in ("inline", "pool") if rep % 2 == 0 else ("pool", "inline"):
                    r = asyncio.run(one_mode(url, items, a.n, a.concurrency, pool if mode == "pool" else None))
                    rates[mode].append(r)
                    print(f"  {mode:6} #{rep + 1}: {r:,.0f} attempts/s", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
    ratio = [p / i for p, i in zip(rates["pool"], rates["inline"])]
    print(json.dumps({m: {"median": round(statistics.median(v), 1), "min": round(min(v), 1), "max": round(max(v), 1)}
                      for m, v in rates.items()}))
    print(f"pool ({a.workers} worker) / inline: median {statistics.median(ratio):.2f} "
          f"(range {min(ratio):.2f}-{max(ratio):.2f}) on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
