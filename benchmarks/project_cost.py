"""Project a 2.3M-member week from a measured run: tokens per member -> wall time and cost, live and batch.

    .venv/bin/python benchmarks/project_cost.py RUN_DIR [--members 2300000] [--model gpt-4o-mini]
                     [--rpm 30000] [--tpm 150000000] [--concurrency 512] [--latency 2.5]

RUN_DIR is a finished run (its manifest has the measured requests, prompt,
cached and completion tokens, including repairs and the dedup the
population gave). The rate limits default to a high OpenAI usage tier for a
small model (30,000 requests and 150M tokens a minute); pass your own. Live
wall time is the slowest of the three ceilings: RPM, TPM and
concurrency / latency. Batch cost applies the campaign's batch discount;
batch wall time is bounded by the provider's 24-hour window.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from contentgen.config import DEFAULT_PRICES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--members", type=int, default=2_300_000)
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--rpm", type=float, default=30_000)
    ap.add_argument("--tpm", type=float, default=150_000_000)
    ap.add_argument("--concurrency", type=int, default=512)
    ap.add_argument("--latency", type=float, default=2.5, help="seconds per request at the provider")
    ap.add_argument("--batch-discount", type=float, default=0.5)
    a = ap.parse_args()
    m = json.loads((a.run_dir / "manifest.json").read_text())
    n = m["total_members"]
    u = m["usage"]
    req_pm = u["requests"] / n
    pin_pm = u["prompt_tokens"] / n
    cached_pm = u.get("cached_tokens", 0) / n
    out_pm = u["completion_tokens"] / n
    price = DEFAULT_PRICES[a.model]
    N = a.members
    reqs, pin, cached, out = req_pm * N, pin_pm * N, cached_pm * N, out_pm * N
    minutes = max(reqs / a.rpm, (pin + out) / a.tpm, reqs / (a.concurrency / a.latency) / 60)
    live = ((pin - cached) * price.input + cached * price.cached_input + out * price.output) / 1e6
    batch = (pin * price.input + out * price.output) / 1e6 * a.batch_discount
    print(f"$ .venv/bin/python benchmarks/project_cost.py {a.run_dir} --members {N}")
    print(f"measured on {n:,} members: {req_pm:.2f} requests, {pin_pm:,.0f} prompt tokens "
          f"({cached_pm:,.0f} cached), {out_pm:,.0f} completion tokens per member; dedup ratio "
          f"{m.get('dedup', {}).get('dedup_ratio')}")
    print(f"{N:,} members on {a.model}: {reqs:,.0f} requests, {(pin + out) / 1e9:.2f}B tokens")
    print(f"  live:  {minutes:,.0f} min (limits {a.rpm:,.0f} RPM, {a.tpm:,.0f} TPM, {a.concurrency} in flight at "
          f"{a.latency}s), ${live:,.0f}")
    print(f"  batch: within the 24 h window, ${batch:,.0f} (x{a.batch_discount} on list prices; "
          "repairs of what fails the gates go live)")


if __name__ == "__main__":
    main()
