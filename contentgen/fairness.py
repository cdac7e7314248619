"""Fairness audit (placeholder, filled below)."""

from __future__ import annotations

import numpy as np

AGE_EDGES = (25, 35, 45, 55, 65)


def age_bands(age) -> np.ndarray:
    """'16-24', '25-34', '35-44', '45-54', '55-64', '65+' or 'unknown'."""
    a = np.asarray(age, dtype=float)
    labels = np.array(["<25", "25-34", "35-44", "45-54", "55-64", "65+"], dtype=object)
    idx = np.searchsorted(np.array(AGE_EDGES), np.nan_to_num(a, nan=0.0), side="right")
    out = labels[idx]
    out[np.isnan(a)] = "unknown"
    return out
