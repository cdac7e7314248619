"""`contentgen score` at AthenaPlus scale: wall time and peak memory, and what it found against the truth.

    .venv/bin/python benchmarks/bench_score.py [--members 2300000] [--data DIR] [--repeat 1] [--dry-run]

Writes the raw sample data (``sample-data --raw --format parquet``) into --data (kept; reused when it is
already there), then runs ``contentgen score`` in a fresh process --repeat times and reports the median and
range of wall time and peak RSS (the child's ru_maxrss). With --dry-run it also runs ``contentgen run
--dry-run`` on the scored output, alternating with score, and prints the ratio of the two peaks: score's
memory next to run's, measured side by side on the same members. Finally it compares score's output with the
simulation's truth (segments, churn AUC against the realized 90-day label, best hour) and prints the
score report's own figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=2_300_000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/bench_score_data"))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dry-run", action="store_true", help="also measure `run --dry-run` on the output, alternating")
    args = ap.parse_args()
    print("command:", " ".join([Path(sys.executable).name, *sys.argv]), flush=True)

    data = args.data
    marker = data / "raw" / "truth.json"
    if not marker.exists() or json.loads(marker.read_text())["counts"]["members"] != args.members:
        shutil.rmtree(data, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run([PY, "-m", "contentgen.cli", "sample-data", str(data), "--members", str(args.members),
                        "--format", "parquet", "--raw"], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        print(f"sample data: {args.members:,} members in {time.perf_counter() - t0:.0f} s", flush=True)
    sizes = {p.name: p.stat().st_size / 2**20 for p in sorted((data / "raw").iterdir())}
    print("raw files: " + ", ".join(f"{k} {v:,.1f} MiB" for k, v in sizes.items()))
    truth = json.loads(marker.read_text())["counts"]
    print(f"rows: {truth['transactions']:,} transactions, {truth['events']:,} events")

    out = data / "scored"
    score_cmd = [PY, "-m", "contentgen.cli", "score", str(data / "raw"), "--campaign", str(data / "campaign.yaml"),
                 "--out", str(out)]
    dry_cmd = [PY, "-m", "contentgen.cli", "run", str(out / "campaign.yaml"), "--dry-run"]
    walls, peaks, dwalls, dpeaks = [], [], [], []
    for i in range(args.repeat):
        # RUSAGE_CHILDREN is a running maximum: measure each kind in its own helper process
        w, pk = measured(score_cmd)
        walls.append(w)
        peaks.append(pk)
        print(f"score #{i + 1}: {w:.0f} s, peak RSS {pk:,.0f} MiB", flush=True)
        if args.dry_run:
            w, pk = measured(dry_cmd)
            dwalls.append(w)
            dpeaks.append(pk)
            print(f"run --dry-run #{i + 1}: {w:.0f} s, peak RSS {pk:,.0f} MiB", flush=True)

    def med(xs: list[float]) -> str:
        return f"{statistics.median(xs):,.0f} (range {min(xs):,.0f}-{max(xs):,.0f})"

    print(f"score: wall {med(walls)} s, peak RSS {med(peaks)} MiB, {args.members / statistics.median(walls):,.0f} "
          "members/s")
    if dpeaks:
        print(f"run --dry-run: wall {med(dwalls)} s, peak RSS {med(dpeaks)} MiB")
        print(f"peak RSS score / run --dry-run: {statistics.median(peaks) / statistics.median(dpeaks):.2f}")
    report = json.loads((out / "score_report.json").read_text())
    quality(data, out, report)


def measured(cmd: list[str]) -> tuple[float, float]:
    """Wall time and peak RSS of cmd, run under a helper so the rusage maximum is that command's alone."""
    helper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
              "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True); "
              "w = time.perf_counter() - t; "
              "print(w, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024); "
              "sys.exit(r.returncode and (sys.stderr.write(r.stderr[-3000:]) or r.returncode))")
    p = subprocess.run([PY, "-c", helper, *cmd], capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr}")
    w, pk = p.stdout.split()
    return float(w), float(pk)


def quality(data: Path, out: Path, report: dict) -> None:
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    cols = ["member_id", "segment", "churn_risk", "last_engaged_hour"]
    members = pd.read_csv(out / "members.csv", usecols=cols, dtype={"member_id": str})
    truth = pd.read_csv(data / "raw" / "truth_members.csv", dtype={"member_id": str})
    j = members.merge(truth, on="member_id", suffixes=("", "_true"))
    engaged = j[j["engaged_on_send_date"]]
    hours = j.dropna(subset=["last_engaged_hour", "best_hour_of_week"])
    seg, ch, af = report["segments"], report["churn"], report["affinity"]["recall_at_10"]
    print(f"against the truth ({len(j):,} members): segment agreement {(j.segment == j.segment_true).mean():.3f} "
          f"(engaged members {(engaged.segment == engaged.segment_true).mean():.3f}); churn AUC vs the realized "
          f"90-day label {roc_auc_score(j.churned_90d, j.churn_risk):.3f}, mean predicted {j.churn_risk.mean():.3f} "
          f"vs realized {j.churned_90d.mean():.3f}; best hour within 1 h "
          f"{((hours.last_engaged_hour - hours.best_hour_of_week).abs() <= 1).mean():.3f}")
    v = ch["validation"]
    print(f"score report: segments stable week over week {seg['stability']['agreement']:.3f}; churn validation AUC "
          f"{v['auc']}, Brier {v['brier']}, ECE {v['ece']} (n {v['n']:,}); recall@10 {af['recall_model']} vs "
          f"popularity {af['recall_popularity']} (difference {af['difference']}, 95% CI {af['difference_ci']}, "
          f"{af['members']:,} members); quarantined raw rows {report['quarantine']['rows']:,}")
    cal = {r["group"]: r for r in ch["calibration_by_group"]["locale"]}
    print("churn calibration by locale: " + ", ".join(f"{g} predicted {r['mean_predicted']} observed {r['observed']} "
                                                      f"{r['observed_ci']}" for g, r in cal.items()))


if __name__ == "__main__":
    main()
