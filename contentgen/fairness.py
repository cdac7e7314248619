"""Fairness audit: do the models and the messages serve every group of members equally?

For each dimension (age band, locale, opt-in tier, segment) and each of its
groups, the audit compares the group with **everyone else** on:

============== ======================================================= ===========
metric         population (numerator)                                   margin key
============== ======================================================= ===========
open, click,   treated members with every lever on (opened, clicked,    outcome
purchase rate  purchased)
opt-out rate   the same members (opted out)                             opt_out
fallback rate  messages the model wrote or tried to: approved,          fallback
               repaired, fallback (fallback)
rejection rate members planned a message: those plus review and         rejection
               rejected (rejected)
offer rate     members sent a message, lever cells content and offer    offer
               left out (an offer in the plan)
churn          the churn model's validation snapshot (``contentgen      calibration
calibration    score``): observed rate vs mean predicted
============== ======================================================= ===========

A group is **flagged** when the whole 95% interval of its difference from
the rest (Newcombe hybrid score) lies beyond the campaign's margin
(``fairness.margins``, absolute): the data say the gap is larger than the
margin, not merely that there is a gap. With four dimensions, about twenty
groups and eight measures, a looser rule (point estimate beyond the margin,
interval excluding 0) flags chance differences in a few thousand members.
Calibration: flagged when the observed rate's whole Wilson interval lies
more than the margin away from the mean predicted rate. Groups smaller than
``fairness.min_n`` are shown, never flagged. Each row says whether the group
is served better or worse than the rest (a higher opt-out, fallback or
rejection rate is worse; a higher open, click, purchase or offer rate is
better). When one group of a dimension is far off, the others' "rest"
contains it, so in a dimension with a dominant group (en-US) that group can
show the mirror image of a minority's gap.
Offer rates differ by segment and tier by design (offers target segments and
churn-prevention offers go to tier 3 only): the audit shows those flags; a
person decides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["age_bands", "audit", "AGE_EDGES", "DIMENSIONS", "METRICS", "campaign_of_run", "read_member_groups"]

AGE_EDGES = (25, 35, 45, 55, 65)
DIMENSIONS = ("age_band", "locale", "tier", "segment")
SENT = ("approved", "repaired", "fallback")
# key, label, margin key
METRICS = (("open_rate", "Open rate", "outcome"), ("click_rate", "Click rate", "outcome"),
           ("purchase_rate", "Purchase rate", "outcome"), ("opt_out_rate", "Opt-out rate", "opt_out"),
           ("fallback_rate", "Fallback rate", "fallback"), ("rejection_rate", "Rejection rate", "rejection"),
           ("offer_rate", "Offer rate", "offer"))
#: a higher rate serves the group better (True) or worse (False)
HIGHER_IS_BETTER = {"open_rate": True, "click_rate": True, "purchase_rate": True, "opt_out_rate": False,
                    "fallback_rate": False, "rejection_rate": False, "offer_rate": True}
POPULATIONS = {
    "open_rate": "treated members with every lever on",
    "click_rate": "treated members with every lever on",
    "purchase_rate": "treated members with every lever on",
    "opt_out_rate": "treated members with every lever on",
    "fallback_rate": "approved + repaired + fallback (content cell left out)",
    "rejection_rate": "approved + repaired + fallback + review + rejected (content cell left out)",
    "offer_rate": "members sent a message (content and offer cells left out)",
}


def age_bands(age) -> np.ndarray:
    """'<25', '25-34', '35-44', '45-54', '55-64', '65+' or 'unknown' (missing age)."""
    a = np.asarray(pd.to_numeric(pd.Series(np.asarray(age, dtype=object)), errors="coerce"), dtype=float)
    labels = np.array(["<25", "25-34", "35-44", "45-54", "55-64", "65+"], dtype=object)
    idx = np.searchsorted(np.array(AGE_EDGES), np.nan_to_num(a, nan=0.0), side="right")
    out = labels[idx]
    out[np.isnan(a)] = "unknown"
    return out


def campaign_of_run(run_dir: Path):
    """The campaign a run recorded in its store (None when the store or the file is gone, or it no longer loads)."""
    from .config import load_campaign
    from .errors import ContentgenError
    from .store import read_meta

    path = read_meta(Path(run_dir), "campaign_path")
    if not path or not Path(path).is_file():
        return None
    try:
        return load_campaign(path)
    except ContentgenError:
        return None


def read_member_groups(path: Path) -> pd.DataFrame:
    """member_id, age_band, locale from a members file (CSV, Parquet or JSONL), only those columns."""
    from .errors import InputFileError

    p = Path(path)
    want = ["member_id", "age", "locale"]
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            names = pq.read_schema(p).names
            df = pd.read_parquet(p, columns=[c for c in want if c in names])
        elif p.suffix.lower() == ".csv":
            df = pd.read_csv(p, usecols=lambda c: c in want, dtype=str, keep_default_na=False)
        else:
            df = pd.read_json(p, lines=True, dtype=False)
            df = df[[c for c in want if c in df.columns]]
    except (OSError, ValueError) as e:
        raise InputFileError(f"cannot read the members file for the fairness audit: {e}", file=str(p),
                             hint="pass --members with the run's members file (CSV, Parquet or JSONL)") from None
    if "member_id" not in df:
        raise InputFileError("the members file has no member_id column", file=str(p))
    out = pd.DataFrame({"member_id": df["member_id"].astype(str).str.strip()})
    out["age_band"] = age_bands(df["age"]) if "age" in df else "unknown"
    loc = df["locale"].astype(str).str.strip() if "locale" in df else pd.Series("", index=df.index)
    out["locale"] = loc.where(loc != "", "unknown").to_numpy()
    return out.drop_duplicates("member_id")


AGE_ORDER = ("<25", "25-34", "35-44", "45-54", "55-64", "65+", "unknown")


def _group_order(g: Any) -> tuple[int, str]:
    from .models import SEGMENTS

    s = str(g)
    if s in AGE_ORDER:
        return AGE_ORDER.index(s), s
    if s in SEGMENTS:
        return SEGMENTS.index(s), s
    return 100 if s == "unknown" else 50, s


def _compare(events: np.ndarray, groups: np.ndarray, margin: float, min_n: int) -> list[dict[str, Any]]:
    from .report import _ci, _r, newcombe_diff, wilson

    rows = []
    total_n, total_x = len(events), int(events.sum())
    for g in sorted(set(groups.tolist()), key=_group_order):
        sel = groups == g
        n, x = int(sel.sum()), int(events[sel].sum())
        rn, rx = total_n - n, total_x - x
        diff = x / n - rx / rn if n and rn else None
        ci = newcombe_diff(x, n, rx, rn) if n and rn else None
        small = n < min_n
        flagged = bool(not small and ci is not None and (ci[0] > margin or ci[1] < -margin))
        rows.append({"group": str(g), "n": n, "count": x, "rate": _r(x / n) if n else None,
                     "rate_ci": _ci(wilson(x, n)), "rest_n": rn, "rest_rate": _r(rx / rn) if rn else None,
                     "diff": _r(diff), "diff_ci": _ci(ci), "small_n": small, "flagged": flagged})
    return rows


def audit(run: pd.DataFrame, joined: pd.DataFrame, members: pd.DataFrame | None, score_report: dict | None,
          margins: dict[str, float], min_n: int, *, sources: dict[str, Any] | None = None) -> dict[str, Any]:
    """The audit, as a JSON-ready dict. ``run``: the run's members (outcome, segment, tier, send, lever_cell,
    has_offer); ``joined``: the report's run x outcomes frame; ``members``: member_id, age_band, locale (or None)."""
    run = run[run["outcome"] != "invalid"].copy()
    joined = joined.copy()
    dims = ["tier", "segment"]
    if members is not None:
        run = run.merge(members, on="member_id", how="left")
        joined = joined.merge(members, on="member_id", how="left")
        dims = list(DIMENSIONS)
    for frame in (run, joined):
        for dim in ("age_band", "locale"):
            if dim in frame:
                frame[dim] = frame[dim].fillna("unknown")
        frame["tier"] = frame["tier"].astype(str)
        frame["segment"] = frame["segment"].astype(str)
        if "lever_cell" not in frame:
            frame["lever_cell"] = ""
        frame["lever_cell"] = frame["lever_cell"].fillna("")
    on = joined[(joined["arm"] == "treated") & (joined["lever_cell"] == "")]
    generated = run[run["outcome"].isin(SENT) & (run["lever_cell"] != "content")]
    planned = run[run["outcome"].isin(SENT + ("review", "rejected")) & (run["lever_cell"] != "content")]
    sent = run[run["send"] & run["outcome"].isin(SENT) & ~run["lever_cell"].isin(("content", "offer"))]
    data = {
        "open_rate": (on, on["opened"] if "opened" in on else None),
        "click_rate": (on, on["clicked"] if "clicked" in on else None),
        "purchase_rate": (on, on["purchased"] if "purchased" in on else None),
        "opt_out_rate": (on, on["opted_out"] if "opted_out" in on else None),
        "fallback_rate": (generated, generated["outcome"] == "fallback"),
        "rejection_rate": (planned, planned["outcome"] == "rejected"),
        "offer_rate": (sent, sent["has_offer"] if "has_offer" in sent else None),
    }
    metrics: dict[str, Any] = {}
    flags: list[dict[str, Any]] = []
    for key, label, mkey in METRICS:
        frame, ev = data[key]
        margin = float(margins[mkey])
        entry: dict[str, Any] = {"label": label, "population": POPULATIONS[key], "margin": margin, "by": {}}
        if ev is None or not len(frame):
            entry["note"] = "no members in this population"
            metrics[key] = entry
            continue
        events = np.asarray(ev, dtype=float)
        entry["overall"] = {"n": len(frame), "rate": round(float(events.mean()), 6)}
        for dim in dims:
            rows = _compare(events, frame[dim].to_numpy().astype(str), margin, min_n)
            entry["by"][dim] = rows
            for r in rows:
                if r["diff"] is not None:
                    r["served"] = "better" if (r["diff"] > 0) == HIGHER_IS_BETTER[key] else "worse"
            flags += [{"metric": key, "label": label, "dimension": dim, **r, "margin": margin}
                      for r in rows if r["flagged"]]
        metrics[key] = entry
    calibration = None
    if score_report:
        margin = float(margins["calibration"])
        by = (score_report.get("churn") or {}).get("calibration_by_group") or {}
        calibration = {"margin": margin, "source": (sources or {}).get("score_report"), "by": {},
                       "snapshot": "the churn model's validation snapshot (fitted on the one before it)"}
        for dim in DIMENSIONS:
            rows = []
            for r in sorted(by.get(dim, []), key=lambda r: _group_order(r["group"])):
                ci = r.get("observed_ci") or [None, None]
                pred = r["mean_predicted"]
                beyond = ci[0] is not None and (ci[0] > pred + margin or ci[1] < pred - margin)
                flagged = bool(r["n"] >= min_n and beyond)
                row = {**r, "small_n": r["n"] < min_n, "flagged": flagged}
                rows.append(row)
                if flagged:
                    flags.append({"metric": "churn_calibration", "label": "Churn-model calibration", "dimension": dim,
                                  "group": r["group"], "n": r["n"], "rate": r["observed"], "rest_rate": pred,
                                  "diff": r["difference"], "margin": margin,
                                  "served": "under-predicted" if r["difference"] > 0 else "over-predicted",
                                  "diff_ci": [round(ci[0] - pred, 6), round(ci[1] - pred, 6)]})
            calibration["by"][dim] = rows
    return {
        "dimensions": dims,
        "missing_dimensions": [d for d in DIMENSIONS if d not in dims],
        "margins": dict(margins), "min_n": min_n,
        "rule": "flagged: the whole 95% interval of (group - rest) lies beyond the margin (calibration: the whole "
                "95% interval of the observed rate lies beyond predicted +/- margin); groups under "
                f"{min_n} members are never flagged",
        "metrics": metrics, "calibration": calibration, "flags": flags,
        "sources": sources or {},
    }


def load_score_report(path: Path) -> dict[str, Any] | None:
    p = Path(path)
    if p.is_dir():
        p = p / "score_report.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def fairness_section(run_dir: Path, run: pd.DataFrame, joined: pd.DataFrame, members: Path | None,
                     score: Path | None) -> dict[str, Any]:
    """The report's fairness audit: margins, members file and score report from the arguments, else from the
    run's campaign (its members file, and score_report.json next to it)."""
    from .config import Fairness

    campaign = campaign_of_run(run_dir)
    fair = campaign.fairness if campaign is not None else Fairness()
    notes = []
    if members is None and campaign is not None and campaign.inputs.members.is_file():
        members = campaign.inputs.members
    if score is None and members is not None:
        cand = Path(members).parent / "score_report.json"
        score = cand if cand.is_file() else None
    if campaign is None:
        notes.append("the run's campaign file was not found: default margins")
    groups = read_member_groups(members) if members is not None else None
    if groups is None:
        notes.append("no members file: age band and locale left out (pass --members)")
    score_rep = load_score_report(score) if score is not None else None
    if score_rep is None:
        notes.append("no score_report.json: churn calibration left out (pass --score, from `contentgen score`)")
    res = audit(run, joined, groups, score_rep, fair.margins.model_dump(), fair.min_n,
                sources={"members": str(members) if members else None, "score_report": str(score) if score else None,
                         "margins": "campaign" if campaign is not None else "defaults"})
    res["notes"] = notes
    return res
