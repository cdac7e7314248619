"""Outcomes for a finished run with PLANTED lever effects and a planted disparity (known ground truth).

``contentgen sample-outcomes RUN_DIR`` reads what the run did for each member
(``messages.jsonl``: outcome, lever cell, channel, offers) and who they are (the
run's members file: segment, churn risk, age, best hour, preferred channel)
and draws opens, clicks, purchases, revenue, opt-outs and complaints from the
model below; it writes ``outcomes.csv`` (the report's format) and
``outcomes.truth.json`` with the planted parameters and, for this run, the
expected lift of every lever, so ``contentgen report`` can be checked
against the truth.

Only members the report compares get a row: the holdout (control) and
members sent a message (treated).

Model (probabilities; all effects add on the open probability, clicks and
purchases follow from opens):

* open = base(segment) - 0.10 x (churn_risk - 0.3)
  + :data:`EFFECTS` ``message`` if any message was sent (holdout basic message included)
  + ``content`` if the copy was the model's (approved or repaired, not the content cell)
  + ``timing`` if sent at the member's own best hour (they have one; not the timing cell)
  + ``channel`` if sent on their preferred channel and that is not e-mail
* click | open = 0.15 + 0.05 x model copy + 0.03 x an offer in the plan
* purchase | click = 0.25 + ``offer`` x an offer in the plan
* revenue | purchase: lognormal around the segment's basket
* opt-out = 0.003 if sent, + :data:`OPT_OUT_65` for members 65 or older who got the
  model's copy (the planted disparity the fairness audit should flag)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputFileError
from .models import SEGMENTS

__all__ = ["write_sample_outcomes", "EFFECTS", "OPT_OUT_65"]

BASE_OPEN = np.array([0.30, 0.22, 0.20, 0.12, 0.26, 0.16, 0.18])  # SEGMENTS order
BASKET = np.array([95.0, 70.0, 55.0, 120.0, 60.0, 85.0, 50.0])
SIGMA = 0.55
EFFECTS = {"message": 0.02, "content": 0.06, "timing": 0.04, "channel": 0.05, "offer": 0.12}
OPT_OUT_65 = 0.025
SENT = ("approved", "repaired", "fallback")


def _read_run(run_dir: Path) -> pd.DataFrame:
    path = Path(run_dir) / "messages.jsonl"
    if not path.is_file():
        raise InputFileError("no messages.jsonl here: is this a finished run's output folder?", file=str(run_dir),
                             hint="pass the --out folder of `contentgen run`")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if r.get("outcome") == "invalid" or not r.get("member_id"):
                continue
            plan = r.get("plan") or {}
            has_offer = bool(plan.get("offers")) or any(p.get("offer_id") for p in plan.get("products") or ())
            rows.append({"member_id": r["member_id"], "outcome": r.get("outcome"), "send": bool(r.get("send")),
                         "segment": r.get("segment"), "channel": r.get("channel") or "email",
                         "lever_cell": r.get("lever_cell") or "", "has_offer": has_offer})
    return pd.DataFrame(rows)


def _read_members(path: Path) -> pd.DataFrame:
    cols = ["member_id", "churn_risk", "age", "last_engaged_hour", "preferred_channel"]
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        df = pd.read_parquet(p, columns=cols)
    elif p.suffix.lower() == ".csv":
        df = pd.read_csv(p, usecols=lambda c: c in cols, dtype={"member_id": str})
    else:
        df = pd.read_json(p, lines=True, dtype={"member_id": str})[[c for c in cols]]
    for c in cols:
        if c not in df:
            df[c] = np.nan
    df["churn_risk"] = pd.to_numeric(df["churn_risk"], errors="coerce")
    return df.drop_duplicates("member_id")


def probabilities(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per member (rows of the run joined with members): open, click, purchase probability, expected revenue,
    opt-out probability, from what the run did."""
    seg = df["segment"].map({s: i for i, s in enumerate(SEGMENTS)}).fillna(1).astype(int).to_numpy()
    churn = df["churn_risk"].fillna(0.3).clip(0, 1).to_numpy()
    sent = df["send"].to_numpy()
    model_copy = df["outcome"].isin(("approved", "repaired")).to_numpy() & (df["lever_cell"] != "content").to_numpy()
    own_time = df["last_engaged_hour"].notna().to_numpy() & (df["lever_cell"] != "timing").to_numpy()
    pref = df["preferred_channel"].fillna("email").astype(str).to_numpy()
    own_channel = (df["channel"].to_numpy() == pref) & (pref != "email")
    offer = df["has_offer"].to_numpy() & (df["arm"] == "treated").to_numpy()
    p_open = (BASE_OPEN[seg] - 0.10 * (churn - 0.3) + sent * (EFFECTS["message"] + EFFECTS["content"] * model_copy
                                                               + EFFECTS["timing"] * own_time
                                                               + EFFECTS["channel"] * own_channel))
    p_open = np.clip(p_open, 0.01, 0.95)
    c_rate = 0.15 + 0.05 * model_copy + 0.03 * offer
    b_rate = 0.25 + EFFECTS["offer"] * offer
    p_click = p_open * c_rate
    p_buy = p_click * b_rate
    age = pd.to_numeric(df["age"], errors="coerce").to_numpy()
    p_out = np.where(sent, 0.003 + OPT_OUT_65 * ((age >= 65) & model_copy), 0.0)
    return {"open": p_open, "click_given_open": c_rate, "buy_given_click": b_rate, "click": p_click,
            "purchase": p_buy, "revenue": p_buy * BASKET[seg] * math.exp(SIGMA ** 2 / 2), "opt_out": p_out,
            "basket": BASKET[seg]}


def write_sample_outcomes(run_dir: Path, members: Path, out: Path | None = None, seed: int = 0) -> dict[str, Any]:
    run = _read_run(run_dir)
    mem = _read_members(members)
    df = run.merge(mem, on="member_id", how="left")
    arm = np.full(len(df), "excluded", dtype=object)
    arm[(df["outcome"] == "holdout").to_numpy()] = "control"
    arm[(df["send"] & df["outcome"].isin(SENT)).to_numpy()] = "treated"
    df["arm"] = arm
    df = df[df["arm"] != "excluded"].reset_index(drop=True)
    p = probabilities(df)
    rng = np.random.default_rng([seed, 77])
    n = len(df)
    opened = rng.random(n) < p["open"]
    clicked = opened & (rng.random(n) < p["click_given_open"])
    bought = clicked & (rng.random(n) < p["buy_given_click"])
    revenue = np.where(bought, np.round(p["basket"] * rng.lognormal(0.0, SIGMA, n), 2), 0.0)
    opted = rng.random(n) < p["opt_out"]
    complained = rng.random(n) < np.where(df["send"].to_numpy(), 0.0005, 0.0)
    out = Path(out) if out else Path(run_dir) / "outcomes.csv"
    frame = pd.DataFrame({"member_id": df["member_id"], "treated": (df["arm"] == "treated").astype(int),
                          "opened": opened.astype(int), "clicked": clicked.astype(int),
                          "purchased": bought.astype(int), "revenue": revenue, "opted_out": opted.astype(int),
                          "complained": complained.astype(int)})
    frame.to_csv(out, index=False, lineterminator="\n", float_format="%.2f")
    truth = {"planted": {"effects_on_open_probability": EFFECTS, "opt_out_65_plus_with_model_copy": OPT_OUT_65,
                         "model": __doc__.split("Model (probabilities")[1].strip()},
             "expected_lever_lift": expected_lever_lift(df, p), "members": n,
             "disparities": [{"metric": "opt_out", "group": {"age_band": "65+"},
                              "what": f"+{OPT_OUT_65} opt-out probability for members 65+ who got the model's copy"}]}
    tpath = out.with_name(out.stem + ".truth.json")
    tpath.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return {"outcomes": out, "truth": tpath, "rows": n, "truth_data": truth}


def expected_lever_lift(df: pd.DataFrame, p: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """What the report's lever lift estimates, in expectation given this run: mean true probability of the
    treated members with all levers on minus that of the lever's cell."""
    treated = (df["arm"] == "treated").to_numpy()
    cell = df["lever_cell"].fillna("").to_numpy()
    on = treated & (cell == "")
    out: dict[str, dict[str, float]] = {}
    for lever in ("content", "timing", "channel", "offer"):
        off = treated & (cell == lever)
        if not off.any() or not on.any():
            continue
        out[lever] = {"open_rate": float(p["open"][on].mean() - p["open"][off].mean()),
                      "click_rate": float(p["click"][on].mean() - p["click"][off].mean()),
                      "purchase_rate": float(p["purchase"][on].mean() - p["purchase"][off].mean()),
                      "revenue_per_member": float(p["revenue"][on].mean() - p["revenue"][off].mean())}
    return out
