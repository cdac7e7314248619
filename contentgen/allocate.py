"""Thompson sampling: next week's variant weights from this week's outcomes.

Each variant's success probability (click, purchase, open...) gets a
Beta-Bernoulli posterior, Beta(1 + successes, 1 + failures) from a Beta(1, 1)
prior. We draw ``draws`` samples from every posterior with a seeded numpy
generator; a variant's raw weight is the share of draws in which it is the
best. A floor then keeps every variant at or above ``floor`` (so a variant that
looks worse keeps collecting evidence): variants below the floor are set to it
and the rest are scaled down proportionally, repeated until none falls below.

``contentgen allocate --outcomes FILE --run RUN_DIR`` joins outcomes to the
run's ``variant`` per member (treated members only: the holdout is no variant)
and prints a ``variants:`` block for the campaign file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import InputFileError, UsageError

__all__ = ["VariantStats", "thompson_weights", "apply_floor", "variant_stats", "allocate", "format_yaml",
           "METRICS"]

METRICS = ("opened", "clicked", "purchased")


@dataclass(frozen=True)
class VariantStats:
    name: str
    trials: int
    successes: int


def apply_floor(weights: Mapping[str, float], floor: float) -> dict[str, float]:
    """Raise every weight to at least ``floor``, taking the mass proportionally from the others."""
    names = list(weights)
    k = len(names)
    if k == 0:
        return {}
    if floor < 0 or floor * k > 1 + 1e-12:
        raise UsageError(f"floor {floor} is impossible for {k} variants (needs 0 <= floor <= 1/{k})")
    w = {n: float(weights[n]) for n in names}
    pinned: set[str] = set()
    while True:
        free = [n for n in names if n not in pinned]
        mass = 1.0 - floor * len(pinned)
        tot = sum(w[n] for n in free)
        new = {n: (w[n] / tot * mass if tot > 0 else mass / len(free)) for n in free}
        low = [n for n in free if new[n] < floor - 1e-12]
        if not low:
            out = {n: floor for n in pinned}
            out.update(new)
            return {n: out[n] for n in names}
        pinned.update(low)


def thompson_weights(stats: Sequence[VariantStats], *, floor: float = 0.05, seed: int = 0,
                     draws: int = 20000) -> dict[str, Any]:
    """Posterior summaries and floored Thompson weights for each variant."""
    from scipy.stats import beta as beta_dist

    if not stats:
        raise UsageError("no variants to allocate", hint="run a campaign with `variants:` first")
    rng = np.random.default_rng(seed)
    a = np.array([1 + s.successes for s in stats], dtype=float)
    b = np.array([1 + s.trials - s.successes for s in stats], dtype=float)
    samples = rng.beta(a[:, None], b[:, None], size=(len(stats), draws))
    best = np.bincount(np.argmax(samples, axis=0), minlength=len(stats)) / draws
    raw = {s.name: float(best[i]) for i, s in enumerate(stats)}
    weights = apply_floor(raw, floor)
    variants = []
    for i, s in enumerate(stats):
        lo, hi = beta_dist.ppf([0.025, 0.975], a[i], b[i])
        variants.append({"name": s.name, "trials": s.trials, "successes": s.successes,
                         "rate": s.successes / s.trials if s.trials else None,
                         "posterior_mean": float(a[i] / (a[i] + b[i])),
                         "credible_interval": [float(lo), float(hi)],
                         "p_best": raw[s.name], "weight": weights[s.name]})
    return {"variants": variants, "weights": weights, "floor": floor, "seed": seed, "draws": draws,
            "prior": "Beta(1, 1)"}


def _rounded(weights: Mapping[str, float], floor: float, nd: int = 3) -> dict[str, float]:
    """Weights rounded to nd decimals that still sum to exactly 1 and keep the floor."""
    q = 10 ** nd
    units = {n: int(round(w * q)) for n, w in weights.items()}
    fl = int(np.ceil(floor * q - 1e-9))
    for n in units:
        units[n] = max(units[n], fl)
    diff = q - sum(units.values())
    order = sorted(units, key=lambda n: -units[n])
    i = 0
    while diff != 0 and order:
        n = order[i % len(order)]
        step = 1 if diff > 0 else -1
        if step > 0 or units[n] - 1 >= fl:
            units[n] += step
            diff -= step
        i += 1
        if i > 10 * q:
            break
    return {n: units[n] / q for n in weights}


def variant_stats(run_dir: Path, outcomes_path: Path, metric: str) -> tuple[list[VariantStats], dict[str, int]]:
    """Per-variant trials/successes of ``metric`` among the run's treated members with an outcome row."""
    from .report import load_outcomes, load_run

    if metric not in METRICS:
        raise UsageError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    run, _ = load_run(run_dir)
    outc = load_outcomes(outcomes_path, required=("member_id", metric))
    treated = run[run["arm"] == "treated"].drop_duplicates("member_id")
    joined = treated.merge(outc[["member_id", metric]], on="member_id", how="inner")
    if joined.empty:
        raise InputFileError("no outcome rows match members this run sent a message to", file=str(outcomes_path))
    g = joined.groupby("variant", sort=True)[metric].agg(["count", "sum"])
    stats = [VariantStats(str(name), int(row["count"]), int(row["sum"])) for name, row in g.iterrows()]
    info = {"matched": len(joined), "unknown_member_ids": int((~outc["member_id"].isin(set(run["member_id"]))).sum()),
            "treated_without_outcome": len(treated) - len(joined)}
    return stats, info


def allocate(run_dir: Path, outcomes_path: Path, *, metric: str = "clicked", floor: float = 0.05, seed: int = 0,
             draws: int = 20000) -> dict[str, Any]:
    stats, info = variant_stats(run_dir, outcomes_path, metric)
    res = thompson_weights(stats, floor=floor, seed=seed, draws=draws)
    res["metric"] = metric
    res["data"] = info
    res["rounded_weights"] = _rounded(res["weights"], floor)
    return res


def format_yaml(res: dict[str, Any]) -> str:
    """A ``variants:`` block to paste into the campaign file, with the posterior summary as comments."""
    import yaml

    lines = [f"# Thompson sampling on '{res['metric']}': {res['prior']} prior, {res['draws']} posterior draws, "
             f"seed {res['seed']}, floor {res['floor']:g}",
             f"# {res['data']['matched']} treated members with outcomes; "
             f"{res['data']['unknown_member_ids']} unknown member id(s) ignored",
             "# variant                 members   successes  rate     posterior mean  95% credible interval  P(best)"]
    for v in res["variants"]:
        ci = v["credible_interval"]
        rate = "-" if v["rate"] is None else f"{v['rate'] * 100:6.2f}%"
        lines.append(f"# {v['name'][:24]:<24} {v['trials']:>8}  {v['successes']:>10}  {rate:>7}  "
                     f"{v['posterior_mean'] * 100:13.2f}%  [{ci[0] * 100:6.2f}%, {ci[1] * 100:6.2f}%]     "
                     f"{v['p_best']:.3f}")
    lines.append("variants:")
    for v in res["variants"]:
        item = yaml.safe_dump({"name": v["name"], "weight": res["rounded_weights"][v["name"]]},
                              default_flow_style=True, allow_unicode=True, width=10_000).strip()
        lines.append(f"  - {item}")
    return "\n".join(lines) + "\n"
