"""Campaign report: incrementality (treated vs holdout) and program health.

``contentgen report RUN_DIR --outcomes FILE`` joins a finished run's export
(``messages.jsonl`` + ``manifest.json``) with a per-member outcomes CSV
(``member_id, opened, clicked, purchased, revenue, opted_out, complained`` and
optionally ``treated``) and computes every figure in :func:`build_report`.

Who is in which arm is decided by the RUN, not by the CSV:

* control   the run's ``holdout`` members (they got the basic message / nothing new);
* treated   members the run sent a message to (``send`` true and outcome
            approved, repaired or fallback);
* excluded  everyone else (suppressed, review, rejected, invalid).

If the CSV has a ``treated`` column it is compared with the run's assignment
and disagreements are counted (the run wins).

Statistics (all two-sided 95%):

* rates (open, click, purchase): absolute difference treated - control with
  the Newcombe hybrid score interval (Newcombe 1998, method 10: built from the
  two Wilson score intervals; stays inside [-1, 1] and behaves with small
  counts and rates near 0). Relative lift = p_t / p_c - 1 with the Katz
  log risk-ratio interval (undefined when either arm has 0 successes).
* revenue per member: Welch's unequal-variance t interval for the difference
  of means (Welch-Satterthwaite degrees of freedom); relative lift
  m_t / m_c - 1 with a delta-method interval on log(m_t / m_c) using the same
  t quantile.
* health rates (opt-out, complaint): Wilson score interval per rate.

Any group where either arm has fewer than :data:`MIN_N` members is flagged
``small_n`` ("n too small"); its estimates are still given, but should not be
read.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .errors import InputFileError, NotARunError
from .models import OUTCOMES, SEGMENTS

__all__ = ["build_report", "write_report", "load_outcomes", "load_run", "wilson", "newcombe_diff",
           "katz_rel", "welch_diff", "MIN_N", "RATE_METRICS", "OUTCOME_REQUIRED"]

MIN_N = 30
CONFIDENCE = 0.95
Z = 1.959963984540054  # standard normal 97.5% quantile
SENT_OUTCOMES = ("approved", "repaired", "fallback")
OUTCOME_REQUIRED = ("member_id", "opened", "clicked", "purchased", "revenue", "opted_out", "complained")
BINARY = ("treated", "opened", "clicked", "purchased", "opted_out", "complained")
# (key in the report, outcomes column, label)
RATE_METRICS = (("open_rate", "opened", "Open rate"), ("click_rate", "clicked", "Click rate"),
                ("purchase_rate", "purchased", "Purchase (conversion) rate"))
REVENUE_METRIC = ("revenue_per_member", "revenue", "Revenue per member")
METHODS = {
    "rate_difference": "Newcombe hybrid score interval (method 10, from two Wilson intervals), 95%",
    "rate_relative_lift": "Katz log risk-ratio interval, 95%; relative lift = treated/control - 1",
    "revenue_difference": "Welch unequal-variance t interval (Welch-Satterthwaite df), 95%",
    "revenue_relative_lift": "delta method on log(mean_t/mean_c) with the Welch t quantile, 95%",
    "health_rates": "Wilson score interval, 95%",
    "small_n": f"flagged 'n too small' where either arm has fewer than {MIN_N} members",
}

_BOOL = {"0": 0, "1": 1, "true": 1, "false": 0, "0.0": 0, "1.0": 1}


# ================================================================ statistics


def wilson(x: int, n: int, z: float = Z) -> tuple[float, float] | None:
    """Wilson score interval for x successes out of n."""
    if n <= 0:
        return None
    p = x / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z / den * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if x == 0 else max(0.0, centre - half)  # exact at the edges (no 0.9999999999)
    hi = 1.0 if x == n else min(1.0, centre + half)
    return lo, hi


def newcombe_diff(x1: int, n1: int, x0: int, n0: int, z: float = Z) -> tuple[float, float] | None:
    """Newcombe hybrid score interval for p1 - p0."""
    if n1 <= 0 or n0 <= 0:
        return None
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1, z)  # type: ignore[misc]
    l0, u0 = wilson(x0, n0, z)  # type: ignore[misc]
    d = p1 - p0
    return d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)


def katz_rel(x1: int, n1: int, x0: int, n0: int, z: float = Z) -> tuple[float | None, tuple[float, float] | None]:
    """Relative lift p1/p0 - 1 and its Katz log risk-ratio interval."""
    if n1 <= 0 or n0 <= 0 or x0 == 0:
        return None, None
    p1, p0 = x1 / n1, x0 / n0
    rel = p1 / p0 - 1
    if x1 == 0:
        return rel, None
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
    lr = math.log(p1 / p0)
    return rel, (math.exp(lr - z * se) - 1, math.exp(lr + z * se) - 1)


def welch_diff(m1: float, s1: float, n1: int, m0: float, s0: float, n0: int,
               confidence: float = CONFIDENCE) -> dict[str, Any]:
    """Welch t interval for m1 - m0 and a delta-method interval for m1/m0 - 1 (s = sample sd, ddof 1)."""
    from scipy.stats import t as t_dist

    out: dict[str, Any] = {"diff": m1 - m0, "diff_ci": None, "rel_lift": None, "rel_lift_ci": None, "df": None}
    if m0 > 0:
        out["rel_lift"] = m1 / m0 - 1
    if n1 < 2 or n0 < 2:
        return out
    v1, v0 = s1 * s1 / n1, s0 * s0 / n0
    se = math.sqrt(v1 + v0)
    if se == 0:
        out["diff_ci"] = (m1 - m0, m1 - m0)
        return out
    df = (v1 + v0) ** 2 / ((v1 * v1 / (n1 - 1) if v1 else 0.0) + (v0 * v0 / (n0 - 1) if v0 else 0.0))
    tq = float(t_dist.ppf(0.5 + confidence / 2, df))
    out["df"] = df
    out["diff_ci"] = (m1 - m0 - tq * se, m1 - m0 + tq * se)
    if m1 > 0 and m0 > 0:
        se_log = math.sqrt(v1 / (m1 * m1) + v0 / (m0 * m0))
        lr = math.log(m1 / m0)
        out["rel_lift_ci"] = (math.exp(lr - tq * se_log) - 1, math.exp(lr + tq * se_log) - 1)
    return out


# ================================================================ inputs


def load_run(run_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The run's members (member_id, outcome, segment, tier, send, variant, arm) and its manifest."""
    run_dir = Path(run_dir)
    mpath, rpath = run_dir / "manifest.json", run_dir / "messages.jsonl"
    for p in (mpath, rpath):
        if not p.is_file():
            raise NotARunError(f"no {p.name} here: is this a finished run's output folder?", file=str(run_dir),
                                 hint="pass the --out folder of `contentgen run` (or `contentgen merge`)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputFileError(f"manifest is not valid JSON ({e})", file=str(mpath)) from None
    ids, outcomes, segs, tiers, sends, variants = [], [], [], [], [], []
    cells, offered = [], []  # per-lever cells and offers, for the lever lift and the fairness audit
    with open(rpath, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputFileError(f"not valid JSON ({e.msg})", file=str(rpath), line=lineno) from None
            ids.append(r.get("member_id"))
            outcomes.append(r.get("outcome") or "")
            segs.append(r.get("segment"))
            tiers.append(r.get("tier"))
            sends.append(bool(r.get("send")))
            variants.append(r.get("variant") or "default")
            cells.append(r.get("lever_cell") or "")
            plan = r.get("plan") or {}
            offered.append(bool(plan.get("offers")) or any(p.get("offer_id") for p in plan.get("products") or ()))
    df = pd.DataFrame({"member_id": pd.Series(ids, dtype=object), "outcome": outcomes,
                       "segment": pd.Series(segs, dtype=object), "tier": pd.Series(tiers, dtype=object),
                       "send": np.array(sends, dtype=bool), "variant": variants, "lever_cell": cells,
                       "has_offer": np.array(offered, dtype=bool)})
    arm = np.full(len(df), "excluded", dtype=object)
    arm[(df["outcome"] == "holdout").to_numpy()] = "control"
    arm[(df["send"] & df["outcome"].isin(SENT_OUTCOMES)).to_numpy()] = "treated"
    df["arm"] = arm
    return df, manifest


def pair_sample_outcomes(outcomes_path: Path, members_path: Path, campaign_id: str, share: float,
                         seed: int = 0) -> int:
    """Make a sample outcomes file agree with the run its campaign will make: ``treated`` is 0 exactly for
    the campaign's stratified holdout (``plan.stratified_holdout``) and 1 for everyone else, and a row whose
    flag changes takes the outcomes of a row drawn with the new flag in the same segment (seeded), so
    treated and holdout still differ as the generator drew them. Returns how many rows changed.

    Sample data only (``contentgen sample-data`` calls it): a real outcomes file is reported as it is, and
    a ``treated`` column that disagrees with the run is counted in the report."""
    from .plan import holdout_of, member_segments

    df = pd.read_csv(outcomes_path, dtype=str, keep_default_na=False)
    if df.empty or "treated" not in df.columns:
        return 0
    members = member_segments(members_path)
    holdout = holdout_of(members, campaign_id, share)
    seg = members.set_index("member_id")["segment"]
    want = np.where(df["member_id"].isin(holdout), "0", "1")
    drawn = df["treated"].to_numpy()
    flip = np.flatnonzero(drawn != want)
    if not len(flip):
        return 0
    metrics = [c for c in df.columns if c not in ("member_id", "treated")]
    segments = df["member_id"].map(seg).fillna("").to_numpy()
    old = df[metrics].to_numpy(copy=True)
    new = old.copy()
    rng = np.random.default_rng(seed)
    for (segment, flag), rows in pd.Series(flip).groupby([segments[flip], want[flip]]):
        pool = np.flatnonzero((segments == segment) & (drawn == flag))
        if not len(pool):
            pool = np.flatnonzero(drawn == flag)
        if len(pool):
            new[rows.to_numpy()] = old[rng.choice(pool, size=len(rows))]
    df[metrics] = new
    df["treated"] = want
    tmp = Path(outcomes_path).with_suffix(".csv.tmp")
    df.to_csv(tmp, index=False, lineterminator="\n")
    tmp.replace(outcomes_path)
    return int(len(flip))


def _fail(path: Path, line: int, col_no: int, col: str, msg: str) -> InputFileError:
    return InputFileError(f"column {col_no} ({col}): {msg}", file=str(path), line=line, key=col)


def load_outcomes(path: Path, required: Iterable[str] = OUTCOME_REQUIRED) -> pd.DataFrame:
    """Read and validate an outcomes CSV; any bad value raises InputFileError naming file, line and column.

    Binary columns take 0/1 (or true/false); revenue is a finite number >= 0.
    Line numbers count the header as line 1.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError("outcomes file not found", file=str(path))
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, skipinitialspace=True,
                          encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise InputFileError("outcomes file is empty (expected a header line)", file=str(path)) from None
    except pd.errors.ParserError as e:
        raise InputFileError(f"not a well-formed CSV: {e}", file=str(path)) from None
    except UnicodeDecodeError as e:
        raise InputFileError(f"not UTF-8 text ({e.reason} at byte {e.start})", file=str(path)) from None
    raw.columns = [str(c).strip() for c in raw.columns]
    cols = list(raw.columns)
    missing = [c for c in required if c not in cols]
    if missing:
        raise InputFileError(f"missing column(s) {', '.join(missing)}; header has {', '.join(cols)}",
                             file=str(path), line=1,
                             hint="expected " + ", ".join(required) + " (and optionally treated)")
    out = pd.DataFrame({"member_id": raw["member_id"].str.strip()})
    blank = np.flatnonzero((out["member_id"] == "").to_numpy())
    if len(blank):
        raise _fail(path, int(blank[0]) + 2, cols.index("member_id") + 1, "member_id", "empty member id")
    dup = np.flatnonzero(out["member_id"].duplicated().to_numpy())
    if len(dup):
        i = int(dup[0])
        first = int(np.flatnonzero((out["member_id"] == out["member_id"].iat[i]).to_numpy())[0])
        raise _fail(path, i + 2, cols.index("member_id") + 1, "member_id",
                    f"member id {out['member_id'].iat[i]!r} repeats line {first + 2}")
    for col in cols:
        if col == "member_id" or (col not in BINARY and col != "revenue"):
            continue
        s = raw[col].str.strip()
        if col == "revenue":
            v = pd.to_numeric(s, errors="coerce")
            arr = v.to_numpy(dtype=float)
            bad = np.flatnonzero(~np.isfinite(arr) | (arr < 0))
            if len(bad):
                i = int(bad[0])
                val = s.iat[i]
                what = "empty" if val == "" else f"{val!r} is not a non-negative number"
                raise _fail(path, i + 2, cols.index(col) + 1, col, what)
            out[col] = arr
        else:
            v = s.str.lower().map(_BOOL)
            bad = np.flatnonzero(v.isna().to_numpy())
            if len(bad):
                i = int(bad[0])
                val = s.iat[i]
                what = "empty" if val == "" else f"{val!r} is not 0 or 1"
                raise _fail(path, i + 2, cols.index(col) + 1, col, what)
            out[col] = v.to_numpy(dtype=np.int64)
    return out


# ================================================================ figures


def _r(x: float | None, nd: int = 6) -> float | None:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return round(float(x), nd)


def _ci(ci: tuple[float, float] | None, nd: int = 6) -> list[float | None] | None:
    return None if ci is None else [_r(ci[0], nd), _r(ci[1], nd)]


def _rate_lift(t: pd.DataFrame, c: pd.DataFrame, col: str) -> dict[str, Any]:
    n1, n0 = len(t), len(c)
    x1, x0 = int(t[col].sum()), int(c[col].sum())
    p1 = x1 / n1 if n1 else None
    p0 = x0 / n0 if n0 else None
    rel, rel_ci = katz_rel(x1, n1, x0, n0)
    return {
        "treated": {"n": n1, "successes": x1, "rate": _r(p1)},
        "control": {"n": n0, "successes": x0, "rate": _r(p0)},
        "diff": _r(p1 - p0) if n1 and n0 else None,
        "diff_ci": _ci(newcombe_diff(x1, n1, x0, n0)),
        "rel_lift": _r(rel), "rel_lift_ci": _ci(rel_ci),
    }


def _revenue_lift(t: pd.DataFrame, c: pd.DataFrame) -> dict[str, Any]:
    n1, n0 = len(t), len(c)
    a1, a0 = t["revenue"].to_numpy(dtype=float), c["revenue"].to_numpy(dtype=float)
    m1 = float(a1.mean()) if n1 else None
    m0 = float(a0.mean()) if n0 else None
    s1 = float(a1.std(ddof=1)) if n1 > 1 else None
    s0 = float(a0.std(ddof=1)) if n0 > 1 else None
    res: dict[str, Any] = {
        "treated": {"n": n1, "mean": _r(m1), "sd": _r(s1), "total": _r(float(a1.sum()), 2)},
        "control": {"n": n0, "mean": _r(m0), "sd": _r(s0), "total": _r(float(a0.sum()), 2)},
        "diff": None, "diff_ci": None, "rel_lift": None, "rel_lift_ci": None, "df": None,
    }
    if n1 and n0:
        w = welch_diff(m1, s1 or 0.0, n1, m0, s0 or 0.0, n0)  # type: ignore[arg-type]
        res.update(diff=_r(w["diff"]), diff_ci=_ci(w["diff_ci"]), rel_lift=_r(w["rel_lift"]),
                   rel_lift_ci=_ci(w["rel_lift_ci"]), df=_r(w["df"], 2))
    return res


def _lift_group(df: pd.DataFrame) -> dict[str, Any]:
    t, c = df[df["arm"] == "treated"], df[df["arm"] == "control"]
    small = len(t) < MIN_N or len(c) < MIN_N
    metrics = {key: _rate_lift(t, c, col) for key, col, _ in RATE_METRICS}
    metrics[REVENUE_METRIC[0]] = _revenue_lift(t, c)
    return {"n_treated": len(t), "n_control": len(c), "small_n": small,
            "note": "n too small" if small else "", "metrics": metrics}


def _rate(x: int, n: int) -> dict[str, Any]:
    return {"n": n, "count": x, "rate": _r(x / n) if n else None, "ci": _ci(wilson(x, n))}


def _health_group(joined: pd.DataFrame, run: pd.DataFrame) -> dict[str, Any]:
    t = joined[joined["arm"] == "treated"]
    counts = Counter(run["outcome"])
    generated = sum(counts[o] for o in SENT_OUTCOMES)
    return {
        "opt_out": _rate(int(t["opted_out"].sum()), len(t)),
        "complaint": _rate(int(t["complained"].sum()), len(t)),
        "small_n": len(t) < MIN_N,
        "messages": generated,
        "repair_rate": _r(counts["repaired"] / generated) if generated else None,
        "fallback_rate": _r(counts["fallback"] / generated) if generated else None,
        "review": counts["review"], "rejected": counts["rejected"],
        "outcomes": {o: counts[o] for o in OUTCOMES},
    }


def _order_segments(values: Iterable[Any]) -> list[Any]:
    vals = {v for v in values if v is not None and v == v}
    known = [s for s in SEGMENTS if s in vals]
    return known + sorted((v for v in vals if v not in SEGMENTS), key=str)


def _order_tiers(values: Iterable[Any]) -> list[Any]:
    vals = {v for v in values if v is not None and v == v}
    return sorted(vals, key=lambda v: (not isinstance(v, (int, np.integer)), str(v)))


def build_report(run_dir: Path, outcomes_path: Path, *, title: str | None = None, members: Path | None = None,
                 score: Path | None = None) -> dict[str, Any]:
    """Every figure of the campaign report, as a JSON-ready dict. ``members`` (age, locale) and ``score``
    (score_report.json) feed the fairness audit; by default they are found through the run's campaign."""
    run, manifest = load_run(run_dir)
    outc = load_outcomes(outcomes_path)

    # ---- join
    run_ids = set(run["member_id"].dropna())
    in_run = outc["member_id"].isin(run_ids)
    unknown = outc.loc[~in_run, "member_id"]
    cohort = run[run["arm"] != "excluded"].drop_duplicates("member_id")
    joined = cohort.merge(outc, on="member_id", how="inner", validate="one_to_one")
    with_outcome = set(joined["member_id"])
    missing = cohort[~cohort["member_id"].isin(with_outcome)]
    excluded_rows = int(outc["member_id"].isin(set(run.loc[run["arm"] == "excluded", "member_id"].dropna())).sum())

    mismatch: dict[str, Any] | None = None
    if "treated" in outc.columns:
        says_treated = joined["treated"] == 1
        is_treated = joined["arm"] == "treated"
        bad = joined[says_treated != is_treated]
        mismatch = {
            "count": len(bad),
            "share": _r(len(bad) / len(joined)) if len(joined) else None,
            "csv_treated_run_holdout": int(((bad["treated"] == 1) & (bad["arm"] == "control")).sum()),
            "csv_holdout_run_treated": int(((bad["treated"] == 0) & (bad["arm"] == "treated")).sum()),
            "examples": bad["member_id"].head(10).tolist(),
            "resolution": "the run's assignment is used (holdout = control; sent = treated)",
        }

    # ---- lift
    valid = run[run["outcome"] != "invalid"]
    seg_order = _order_segments(valid["segment"])
    tier_order = _order_tiers(valid["tier"])
    lift = {
        "overall": _lift_group(joined),
        "by_segment": [{"segment": s, **_lift_group(joined[joined["segment"] == s])} for s in seg_order],
        "by_tier": [{"tier": _jsonable(t), **_lift_group(joined[joined["tier"] == t])} for t in tier_order],
    }

    # ---- health
    usage = manifest.get("usage") or {}
    tokens = int(usage.get("prompt_tokens") or 0) + int(usage.get("completion_tokens") or 0)
    sent = int(run["arm"].eq("treated").sum())
    cost = manifest.get("cost_usd")
    health = {
        "overall": _health_group(joined, run),
        "by_tier": [{"tier": _jsonable(t), **_health_group(joined[joined["tier"] == t], run[run["tier"] == t])}
                    for t in tier_order],
        "by_segment": [{"segment": s, **_health_group(joined[joined["segment"] == s],
                                                       run[run["segment"] == s])} for s in seg_order],
        "control_opt_out": _rate(int(joined.loc[joined["arm"] == "control", "opted_out"].sum()),
                                 int(joined["arm"].eq("control").sum())),
        "control_complaint": _rate(int(joined.loc[joined["arm"] == "control", "complained"].sum()),
                                   int(joined["arm"].eq("control").sum())),
        "members_sent": sent,
        "cost_usd": _r(cost) if isinstance(cost, (int, float)) else None,
        "cost_per_member_usd": _r(cost / sent, 8) if isinstance(cost, (int, float)) and sent else None,
        "tokens": tokens,
        "prompt_tokens": int(usage.get("prompt_tokens") or 0),
        "completion_tokens": int(usage.get("completion_tokens") or 0),
        "requests": int(usage.get("requests") or 0),
        "tokens_per_member": _r(tokens / sent, 2) if sent else None,
    }

    from .levers import lever_lift
    from .fairness import fairness_section

    counts = Counter(run["outcome"])
    return {
        "levers": lever_lift(joined),
        "fairness": fairness_section(run_dir, run, joined, members, score),
        "title": title or f"Campaign report: {manifest.get('campaign_id') or Path(run_dir).name}",
        "run": {
            "dir": str(run_dir), "campaign_id": manifest.get("campaign_id"), "send_date": manifest.get("send_date"),
            "model": manifest.get("model"), "total_members": len(run),
            "outcome_counts": {o: counts[o] for o in OUTCOMES},
            "dedup": manifest.get("dedup"),
        },
        "outcomes_file": {
            "path": str(outcomes_path), "rows": len(outc),
            "matched": len(joined),
            "treated": int(joined["arm"].eq("treated").sum()),
            "control": int(joined["arm"].eq("control").sum()),
            "unknown_member_ids": len(unknown), "unknown_examples": unknown.head(10).tolist(),
            "excluded_rows": excluded_rows,
            "missing_outcomes": {"treated": int(missing["arm"].eq("treated").sum()),
                                 "control": int(missing["arm"].eq("control").sum())},
            "treated_mismatch": mismatch,
        },
        "methods": dict(METHODS, min_n=MIN_N, confidence=CONFIDENCE),
        "lift": lift,
        "health": health,
        "segments": [str(s) for s in seg_order],
        "tiers": [_jsonable(t) for t in tier_order],
    }


_LABELS = {"open_rate": "open rate", "click_rate": "click rate", "purchase_rate": "purchase rate",
           "revenue_per_member": "revenue/member"}


def _pct(x: float | None, signed: bool = False) -> str:
    return "n/a" if x is None else (f"{x * 100:+.1f}%" if signed else f"{x * 100:.1f}%")


def _pts(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.1f} pts"


def _usd(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a"
    return (("+" if x >= 0 else "-") if signed else ("-" if x < 0 else "")) + f"${abs(x):,.2f}"


def _span(ci: list[float | None] | None, fmt) -> str:
    return "" if not ci or ci[0] is None or ci[1] is None else f" ({fmt(ci[0])} to {fmt(ci[1])})"


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The overall lift as a person reads it: rounded rates, differences in points, intervals; what is
    missing says why (no holdout members, or fewer than the minimum in an arm)."""
    o = report["lift"]["overall"]
    of = report["outcomes_file"]
    lines = [f"treated {o['n_treated']}, holdout {o['n_control']}; unknown member ids {of['unknown_member_ids']}"]
    if not o["n_control"]:
        lines.append("  no holdout members with outcomes: lift needs the campaign's holdout (holdout_share)")
    elif o["small_n"]:
        lines.append(f"  n too small: fewer than {MIN_N} members in an arm; the figures are shown, not judged")
    lines.append(f"  {'':<15}{'treated':>9}{'holdout':>9}   difference (95% CI)              relative lift (95% CI)")
    for key, m in o["metrics"].items():
        money = key == "revenue_per_member"
        t, c = m["treated"], m["control"]
        tv, cv = (t.get("mean"), c.get("mean")) if money else (t.get("rate"), c.get("rate"))
        fmt = (lambda x: _usd(x)) if money else (lambda x: _pct(x))
        dfmt = (lambda x: _usd(x, signed=True)) if money else _pts
        cfmt = (lambda x: _usd(x, signed=True)) if money else (lambda x: f"{x * 100:+.1f}")
        diff = dfmt(m["diff"]) + _span(m.get("diff_ci"), cfmt)
        rel = _pct(m["rel_lift"], signed=True) + _span(m.get("rel_lift_ci"), lambda x: _pct(x, signed=True))
        lines.append(f"  {_LABELS.get(key, key):<15}{fmt(tv):>9}{fmt(cv):>9}   {diff:<33}{rel}")
    return lines


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write report.json and report.html into out_dir (created); returns their paths."""
    from .report_html import render_html

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "html": out_dir / "report.html"}
    for key, text in (("json", json.dumps(report, indent=2, ensure_ascii=False) + "\n"),
                      ("html", render_html(report))):
        tmp = paths[key].with_suffix(paths[key].suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(paths[key])
    return paths
