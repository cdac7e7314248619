"""Benchmark the LLM transport and pacing (side by side, interleaved, repeated; median and range).

(a) transport: N requests at C in flight (default 256) against a fast server
    (``benchmarks/fast_server.py``, raw asyncio, its own process), interleaved rounds of
      raw aiohttp loop            one ClientSession, json.dumps the body, json.loads the answer
      LLMClient (direct)          the engine's client as the pipeline uses it (retries, budget, negotiation)
      LLMClient (sdk)             the same client with the SDK's own call on DefaultAioHttpClient
      AsyncOpenAI (httpx2)        the SDK with its default transport, a bare loop
    target: LLMClient (direct) / raw aiohttp >= 0.5 (issue 14, benchmark b).
(b) pacing: against the fake server enforcing RPM (then TPM) on a scaled sliding window,
    the share of the limit used and the share of 429 answers; targets >= 98 %, < 0.5 %.
(c) shared budget: S shard processes, each configured with the account's whole limit,
    against the same enforced limit: with ``llm.shared_budget`` (one SQLite file) and
    without; the 429 share and the limit used.

Usage::

    flock /work/heavy.lock .venv/bin/python benchmarks/bench_llm.py            # prints; --write appends
    .venv/bin/python benchmarks/bench_llm.py --parts a --n 2000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contentgen.config import LLMSettings  # noqa: E402
from contentgen.gates.schema import DRAFT_SCHEMA  # noqa: E402
from contentgen.llm.client import LLMClient  # noqa: E402

SYSTEM = ("You write short, warm loyalty emails for AthenaPlus members. Write {first_name} where the name goes. "
          "Return one JSON object with subject, preheader, body and explanations.")


def messages(i: int) -> list[dict[str, str]]:
    products = "\n".join(f"- product_id: P{i * 7 + k} | name: Product {k} | category: home"
                         for k in range(1 + i % 5))
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Member segment: regulars. Recommended products:\n{products}\n"
                                        "Explain each pick in one sentence."}]


def request_body(i: int) -> dict[str, Any]:
    return {"model": "fake-model", "messages": messages(i), "temperature": 0.7, "max_tokens": 400,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "message", "schema": DRAFT_SCHEMA, "strict": True}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server in its own process (so it does not share the client's event loop or GIL)."""

    def __init__(self, args: list[str], port: int) -> None:
        self.port = port
        self.root = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.root}/v1"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"server did not start: {self.proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)

    def config(self, **cfg: Any) -> None:
        httpx.post(f"{self.root}/_fake/config", json=cfg, timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.root}/_fake/stats", timeout=10).json()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# -- (a) transport ---------------------------------------------------------------------------------

async def raw_aiohttp(base_url: str, n: int, c: int) -> float:
    sem = asyncio.Semaphore(c)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=c)) as session:
        async def one(i: int) -> str:
            async with sem:
                async with session.post(f"{base_url}/chat/completions", data=json.dumps(request_body(i)),
                                        headers={"Content-Type": "application/json",
                                                 "Authorization": "Bearer k"}) as r:
                    data = json.loads(await r.read())
                    return data["choices"][0]["message"]["content"]

        t0 = time.perf_counter()
        out = await asyncio.gather(*(one(i) for i in range(n)))
        dt = time.perf_counter() - t0
    assert all(out)
    return n / dt


async def sdk_httpx(base_url: str, n: int, c: int) -> float:
    oai = openai.AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=60)
    sem = asyncio.Semaphore(c)

    async def one(i: int) -> str | None:
        async with sem:
            r = await oai.chat.completions.create(**request_body(i))
            return r.choices[0].message.content

    t0 = time.perf_counter()
    out = await asyncio.gather(*(one(i) for i in range(n)))
    dt = time.perf_counter() - t0
    await oai.close()
    assert all(out)
    return n / dt


async def client_loop(base_url: str, n: int, c: int, **settings: Any) -> tuple[float, LLMClient]:
    client = LLMClient(LLMSettings(model="fake-model", concurrency=c, timeout_s=60, **{"max_retries": 8, **settings}),
                       base_url=base_url, api_key="k")
    await client.complete(messages(0), schema=DRAFT_SCHEMA)     # the one-time probe of /models, not timed
    t0 = time.perf_counter()
    out = await asyncio.gather(*(client.complete(messages(i), schema=DRAFT_SCHEMA) for i in range(n)))
    dt = time.perf_counter() - t0
    await client.aclose()
    assert all(o.text for o in out)
    return n / dt, client


def _fmt(xs: list[float]) -> str:
    return f"median {statistics.median(xs):8.1f} req/s  (range {min(xs):.0f}-{max(xs):.0f})"


def part_a(n: int, c: int, rounds: int) -> list[str]:
    server = Server(["benchmarks/fast_server.py", str(port := free_port())], port)
    try:
        variants = {
            "raw aiohttp loop": lambda: raw_aiohttp(server.base_url, n, c),
            "LLMClient (direct)": lambda: _first(client_loop(server.base_url, n, c, transport="direct")),
            "LLMClient (sdk, aiohttp)": lambda: _first(client_loop(server.base_url, n, c, transport="sdk")),
            "AsyncOpenAI (httpx2)": lambda: sdk_httpx(server.base_url, n, c),
        }
        for fn in variants.values():                                  # warm up every path
            asyncio.run(fn())
        got: dict[str, list[float]] = {k: [] for k in variants}
        ratios: list[float] = []
        for _ in range(rounds):                                       # interleaved
            for name, fn in variants.items():
                got[name].append(asyncio.run(fn()))
            ratios.append(got["LLMClient (direct)"][-1] / got["raw aiohttp loop"][-1])
    finally:
        server.close()
    lines = [f"(a) transport: {n} requests, {c} in flight, fast server (benchmarks/fast_server.py), "
             f"{rounds} interleaved rounds"]
    lines += [f"    {name:<26}: {_fmt(xs)}" for name, xs in got.items()]
    lines.append(f"    LLMClient (direct) / raw aiohttp: median {statistics.median(ratios):.2f} "
                 f"(range {min(ratios):.2f}-{max(ratios):.2f}; target >= 0.5)")
    sdk = [a / b for a, b in zip(got["LLMClient (sdk, aiohttp)"], got["raw aiohttp loop"])]
    lines.append(f"    LLMClient (sdk)    / raw aiohttp: median {statistics.median(sdk):.2f} "
                 f"(range {min(sdk):.2f}-{max(sdk):.2f})")
    return lines


async def _first(coro) -> float:
    return (await coro)[0]


# -- (b) pacing --------------------------------------------------------------------------------------

#: per-minute limits; the fake server enforces them on a sliding window of --window-s seconds, scaled
SCENARIOS = [("RPM-bound", {"rpm": 3000, "tpm": 300_000_000}), ("TPM-bound", {"rpm": 300_000, "tpm": 900_000})]


def _used(st: dict[str, Any], per_window: dict[str, float], window_s: float, name: str) -> tuple[float, int, int]:
    ok, r429 = st["counts"].get("200", 0), st["counts"].get("429", 0)
    span = st["last_200_t"] - st["first_200_t"]
    req_rate = (ok - 1) / span
    tok_rate = (st["tokens"]["prompt"] + st["tokens"]["completion"]) * (ok - 1) / ok / span
    used = (req_rate / (per_window["rpm"] / window_s) if name == "RPM-bound"
            else tok_rate / (per_window["tpm"] / window_s))
    return used, ok, r429


def part_b(latency: float, c: int, window_s: float, seconds: float, rounds: int) -> list[str]:
    server = Server(["-m", "tests.fake_openai", "--port", str(port := free_port()), "--latency", str(latency)], port)
    lines = []
    try:
        for name, per_min in SCENARIOS:
            per_window = {k: int(v * window_s / 60) for k, v in per_min.items()}
            used_all, share_all = [], []
            for _ in range(rounds):
                server.config(reset=True, latency_s=latency, limits={**per_window, "window_s": window_s})
                n = int(min(per_min["rpm"], per_min["tpm"] / 280) / 60 * seconds)
                asyncio.run(client_loop(server.base_url, n, c, **per_min))
                used, ok, r429 = _used(server.stats(), per_window, window_s, name)
                used_all.append(used * 100)
                share_all.append(100 * r429 / max(1, ok + r429))
            lines.append(f"(b) {name}: client rpm={per_min['rpm']} tpm={per_min['tpm']}, {c} in flight; the server "
                         f"enforces the same ({per_window['rpm']} requests, {per_window['tpm']} tokens) on a "
                         f"{window_s:g} s sliding window; {rounds} runs of ~{seconds:g} s")
            lines.append(f"    limit used: median {statistics.median(used_all):.1f}% (range {min(used_all):.1f}-"
                         f"{max(used_all):.1f}; target >= 98%)")
            lines.append(f"    429 share : median {statistics.median(share_all):.2f}% (range {min(share_all):.2f}-"
                         f"{max(share_all):.2f}; target < 0.5%)")
    finally:
        server.close()
    return lines


# -- (c) shared budget across shard processes ---------------------------------------------------------

SHARD = """
import asyncio, sys
sys.path.insert(0, {root!r})
from benchmarks.bench_llm import client_loop
rate, client = asyncio.run(client_loop({base!r}, {n}, {c}, rpm={rpm}, tpm={tpm}, max_retries=20,
                                        shared_budget={shared!r}))
print(client.stats.rate_limited)
"""


def part_c(shards: int, c: int, window_s: float, seconds: float, rounds: int) -> list[str]:
    server = Server(["-m", "tests.fake_openai", "--port", str(port := free_port()), "--latency", "0.02"], port)
    lim = {"rpm": 60, "tpm": 10_000_000}
    scale = 60.0 / window_s
    lines = [f"(c) {shards} shard processes, each configured with the whole limit ({int(lim['rpm'] * scale)} rpm); "
             f"the server allows {lim['rpm']} requests per {window_s:g} s; {rounds} runs each"]
    try:
        for label, shared in (("without llm.shared_budget", False), ("with llm.shared_budget", True)):
            used_all, share_all = [], []
            for _ in range(rounds):
                server.config(reset=True, latency_s=0.02, limits={**lim, "window_s": window_s})
                with tempfile.TemporaryDirectory() as tmp:
                    path = str(Path(tmp) / "budget.db") if shared else None
                    n = int(lim["rpm"] / window_s * seconds / shards)
                    code = SHARD.format(root=str(ROOT), base=server.base_url, n=n, c=c, rpm=int(lim["rpm"] * scale),
                                        tpm=int(lim["tpm"] * scale), shared=path)
                    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True) for _ in range(shards)]
                    for p in procs:
                        out, err = p.communicate(timeout=600)
                        if p.returncode != 0:
                            raise RuntimeError(err[-2000:])
                used, ok, r429 = _used(server.stats(), lim, window_s, "RPM-bound")  # lim: per window
                used_all.append(used * 100)
                share_all.append(100 * r429 / max(1, ok + r429))
            lines.append(f"    {label:<26}: limit used median {statistics.median(used_all):.1f}% "
                         f"(range {min(used_all):.1f}-{max(used_all):.1f}); 429 share median "
                         f"{statistics.median(share_all):.2f}% (range {min(share_all):.2f}-{max(share_all):.2f})")
    finally:
        server.close()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="abc")
    ap.add_argument("--n", type=int, default=3000, help="requests per transport round")
    ap.add_argument("--concurrency", type=int, default=256, help="in flight for (a)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--latency", type=float, default=0.02, help="fake server latency for (b), seconds")
    ap.add_argument("--window-s", type=float, default=10.0, help="the fake server's rate-limit window")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of each pacing run")
    ap.add_argument("--shards", type=int, default=3)
    args = ap.parse_args()
    command = ".venv/bin/python benchmarks/bench_llm.py" + "".join(f" {shlex.quote(a)}" for a in sys.argv[1:])
    print(f"$ {command}")
    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"openai {openai.__version__}, aiohttp {aiohttp.__version__}", flush=True)
    if "a" in args.parts:
        print("\n".join(part_a(args.n, args.concurrency, args.rounds)), flush=True)
    if "b" in args.parts:
        print("\n".join(part_b(args.latency, 32, args.window_s, args.seconds, max(1, args.rounds // 2))),
              flush=True)
    if "c" in args.parts:
        print("\n".join(part_c(args.shards, 16, args.window_s, args.seconds, max(1, args.rounds // 2))), flush=True)


if __name__ == "__main__":
    main()
