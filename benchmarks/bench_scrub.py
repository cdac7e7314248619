"""What the hostile-data guarantees cost: reading members and rendering prompts, with and without them.

Side by side in one process, interleaved, repeated; prints medians, ranges and ratios.

- load: the member rows of the sample file read by the CSV reader that survives broken rows, with
  first names normalized, against a plain ``csv.reader`` over the text file (what the loader did
  before), both feeding the same pydantic validation;
- prompt: plan + render of every sendable member's first prompt with the scrubber (notes and evidence
  details) against the same with the scrubber switched off (notes only stripped of control characters,
  details passed through).

    .venv/bin/python benchmarks/bench_scrub.py --members 50000 --repeat 5
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contentgen import plan as plan_mod  # noqa: E402
from contentgen import prompts as prompts_mod  # noqa: E402
from contentgen.config import load_campaign  # noqa: E402
from contentgen.load import _clean, _iter_csv, iter_members, load_catalog, load_offers, load_suppression  # noqa: E402
from contentgen.scrub import normalize_name  # noqa: E402
from contentgen.models import Member  # noqa: E402
from contentgen.plan import Planner, stratified_holdout  # noqa: E402
from contentgen.prompts import Prompts  # noqa: E402
from contentgen.sample_data import write_sample_data  # noqa: E402


def _validate(row) -> None:
    try:
        Member.model_validate(row)
    except Exception:
        pass


def plain_load(path: Path) -> int:
    """The member rows as the loader read them before: csv.reader over the text file, strip, validate."""
    n = 0
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        for values in reader:
            _validate(_clean(dict(zip(header, values))))
            n += 1
    return n


def new_load(path: Path) -> int:
    """The same with the reader that survives broken rows, and first names normalized."""
    n = 0
    for _, row, _ in _iter_csv(path):
        row = _clean(row)
        if isinstance(row.get("first_name"), str):
            row["first_name"] = normalize_name(row["first_name"])[0]
        _validate(row)
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        paths = write_sample_data(Path(d), a.members, seed=7)
        c = load_campaign(paths["campaign"])
        catalog, _ = load_catalog(c.inputs.catalog)
        offers, _ = load_offers(c.inputs.offers)
        planner = Planner(c, catalog, offers, load_suppression(c.inputs.suppression),
                          holdout=stratified_holdout(c.inputs.members, c.campaign_id, c.holdout_share))
        prompts = Prompts(c.prompts_dir, c)
        rows = [r for r in iter_members(c.inputs.members, c.inputs.recommendations, catalog) if r.member]
        plans = [p for p in (planner.plan(r.member, r.recommendations, recently_bought=r.recently_bought,
                                          returned=r.returned) for r in rows) if p.action == "send"]

        scrubbed_soften = plan_mod.soften_detail
        scrubbed_notes = prompts_mod.sanitize_member_text

        def render(scrub: bool) -> int:
            if scrub:
                plan_mod.soften_detail, prompts_mod.sanitize_member_text = scrubbed_soften, scrubbed_notes
            else:
                plan_mod.soften_detail = lambda s: s
                prompts_mod.sanitize_member_text = (
                    lambda t, m=None: "".join(ch if ch.isprintable() or ch == "\n" else " " for ch in t)[:300].strip())
            scrubbed_soften.cache_clear()
            n = 0
            for r in rows:
                p = planner.plan(r.member, r.recommendations, recently_bought=r.recently_bought, returned=r.returned)
                if p.action == "send":
                    prompts.build(p)
                    n += 1
            return n

        cases = {
            "load: csv.reader + validate": lambda: plain_load(c.inputs.members),
            "load: hostile-safe reader + names": lambda: new_load(c.inputs.members),
            "plan+prompt: no scrubber": lambda: render(False),
            "plan+prompt: scrubber": lambda: render(True),
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        counts: dict[str, int] = {}
        for _ in range(a.repeat):
            for name, fn in cases.items():  # interleaved: each repeat runs every case once
                t = time.perf_counter()
                counts[name] = fn()
                times[name].append(time.perf_counter() - t)
        plan_mod.soften_detail, prompts_mod.sanitize_member_text = scrubbed_soften, scrubbed_notes
        print(f"{a.members:,} sample members ({len(plans):,} first prompts), {a.repeat} interleaved repeats")
        print(f"{'case':38} {'median':>9} {'min':>9} {'max':>9} {'rows/s':>10}")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"{name:38} {med:8.2f}s {min(ts):8.2f}s {max(ts):8.2f}s {counts[name] / med:10,.0f}")
        for base, new in (("load: csv.reader + validate", "load: hostile-safe reader + names"),
                          ("plan+prompt: no scrubber", "plan+prompt: scrubber")):
            r = [n / b for n, b in zip(times[new], times[base])]
            print(f"ratio {new} / {base}: median {statistics.median(r):.2f} "
                  f"(range {min(r):.2f}-{max(r):.2f})")


if __name__ == "__main__":
    main()
