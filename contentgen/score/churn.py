"""90-day disengagement risk: gradient boosting, isotonic calibration, time-based validation.

The label at cut-off c is "no purchase and no e-mail open or click in the 90
days from c" (``features.churn_label``); members enrolled less than
:data:`MIN_TENURE` days before c are not in that snapshot's data.

Validation is by time, never by shuffling members: a model is fitted on the
snapshot at c = -180 (labels from days -180..-91) and judged on the snapshot at
c = -90 (labels from days -90..-1): ROC AUC, Brier score, expected calibration
error (10 equal-width bins, weighted by count) and the reliability table.
The model that scores members today is then fitted the same way on the
snapshot at c = -90, the most recent one whose 90 days are over.

The classifier is scikit-learn's ``HistGradientBoostingClassifier`` inside
``CalibratedClassifierCV`` (isotonic on 3-fold out-of-fold predictions,
one model refitted on all the data; early stopping on 10% of it), so a 0.3 means about 3 in 10
such members disengage.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .features import CHURN_FEATURES

__all__ = ["fit_churn", "evaluate_churn", "reliability", "MIN_TENURE", "TRAIN_CUTOFF", "VALID_CUTOFF"]

MIN_TENURE = 30
TRAIN_CUTOFF = -180
VALID_CUTOFF = -90
BINS = 10


def fit_churn(x: np.ndarray, y: np.ndarray, seed: int = 0):
    """A calibrated classifier; predict_proba(x)[:, 1] is the probability of disengaging."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier

    if len(np.unique(y)) < 2:  # a snapshot where everyone (or no one) disengaged: the base rate is all we know
        return DummyClassifier(strategy="prior").fit(x, y)
    gbm = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, max_leaf_nodes=15, l2_regularization=1.0,
                                         min_samples_leaf=40, early_stopping=True, validation_fraction=0.1,
                                         n_iter_no_change=10, random_state=seed)
    folds = int(min(3, np.bincount(y.astype(int)).min()))
    if folds < 2:
        return gbm.fit(x, y)
    # out-of-fold predictions calibrate one model fitted on all the data (ensemble=False): one model to score
    return CalibratedClassifierCV(gbm, method="isotonic", cv=folds, ensemble=False).fit(x, y)


def reliability(p: np.ndarray, y: np.ndarray, bins: int = BINS) -> tuple[list[dict[str, Any]], float]:
    """The reliability table (equal-width bins of the predicted probability) and the expected calibration error."""
    from ..report import wilson

    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        s = idx == b
        n = int(s.sum())
        if not n:
            continue
        mp, obs = float(p[s].mean()), float(y[s].mean())
        ece += n / len(p) * abs(obs - mp)
        ci = wilson(int(y[s].sum()), n)
        rows.append({"bin": [b / bins, (b + 1) / bins], "n": n, "mean_predicted": round(mp, 4),
                     "observed": round(obs, 4), "observed_ci": [round(ci[0], 4), round(ci[1], 4)] if ci else None})
    return rows, float(ece)


def evaluate_churn(model, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """AUC, Brier, ECE and the reliability table of a fitted model on a later snapshot."""
    from sklearn.metrics import brier_score_loss, roc_auc_score

    p = model.predict_proba(x)[:, 1]
    out: dict[str, Any] = {"n": int(len(y)), "base_rate": round(float(y.mean()), 4) if len(y) else None,
                           "mean_predicted": round(float(p.mean()), 4) if len(p) else None}
    out["auc"] = round(float(roc_auc_score(y, p)), 4) if len(np.unique(y)) == 2 else None
    out["brier"] = round(float(brier_score_loss(y, p)), 5) if len(y) else None
    rows, ece = reliability(p, y)
    out["ece"] = round(ece, 4)
    out["reliability"] = rows
    out["features"] = list(CHURN_FEATURES)
    return out
