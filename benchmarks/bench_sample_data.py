"""Time the sample data generator at AthenaPlus scale (2.3 million members).

    .venv/bin/python benchmarks/bench_sample_data.py [--members N] [--fmt csv|parquet|jsonl] [--keep DIR] [--no-pair]

Prints wall time, members/s, peak RSS (resource.getrusage) and the size of each file.
Run it in a fresh process: peak RSS is the whole process's high-water mark.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from contentgen.sample_data import write_sample_data  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=2_300_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--fmt", default="csv", choices=["csv", "parquet", "jsonl"])
    ap.add_argument("--keep", type=Path, default=None, help="write here and keep the files")
    ap.add_argument("--no-pair", action="store_true",
                    help="skip pairing the outcomes with the campaign's holdout (to time that step)")
    args = ap.parse_args()
    if args.no_pair:
        import contentgen.report

        contentgen.report.pair_sample_outcomes = lambda *a, **k: 0

    out = args.keep or Path(tempfile.mkdtemp(prefix="bench_sample_data_"))
    try:
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        paths = write_sample_data(out, args.members, seed=args.seed, fmt=args.fmt)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        print(f"members        {args.members:,} (fmt={args.fmt}, seed={args.seed}, cpus={os.cpu_count()}, "
              f"outcomes {'not ' if args.no_pair else ''}paired with the holdout)")
        print(f"wall time      {wall:.1f} s (cpu {cpu:.1f} s)")
        print(f"throughput     {args.members / wall:,.0f} members/s")
        print(f"peak RSS       {peak_mib:,.0f} MiB")
        total = 0
        for name, p in paths.items():
            size = p.stat().st_size
            total += size
            print(f"  {name:<16} {p.name:<22} {size / 2**20:10,.1f} MiB")
        print(f"  {'total':<16} {'':<22} {total / 2**20:10,.1f} MiB")
    finally:
        if args.keep is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
