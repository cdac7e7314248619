"""Seven behavioural segments: k-means on RFM and behaviour features, clusters named by rules.

1. **New Members** is a rule, not a cluster: enrolled less than
   :data:`NEW_MEMBER_DAYS` days before the cut-off.
2. Everyone else is clustered: the features of ``features.SEGMENT_FEATURES``
   are standardized (mean 0, sd 1 on the fitting sample) and split by k-means
   (scikit-learn, k = :data:`K` by default, several seeded starts).
3. Each cluster centre is scored against a **signature** per named segment, a
   weighted sum of its standardized features (:data:`SIGNATURES`), e.g.
   Bargain Hunters = 2 x discount share; Lapsed VIPs = spend before the last
   90 days - 1.5 x spend trend + days since the last order. The six names
   are first given to six different clusters so that the total signature
   score is highest (the Hungarian method, ``scipy.optimize.linear_sum_assignment``);
   any further cluster takes the name it scores best on.

**Stability** week over week: the same procedure on the features as they were
a week earlier (cut-off day -7, fitted on its own) and the share of members
whose segment is the same in both weeks, overall and per segment, with the
segment shares of both weeks. Below :data:`STABLE` the score report warns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..models import SEGMENTS
from .features import SEGMENT_FEATURES

__all__ = ["SegmentModel", "fit_segments", "SIGNATURES", "NEW_MEMBER_DAYS", "K", "STABLE"]

NEW_MEMBER_DAYS = 90
K = 10
STABLE = 0.85
NAMED = tuple(s for s in SEGMENTS if s != "New Members")
_F = {name: i for i, name in enumerate(SEGMENT_FEATURES)}
#: signature weights on standardized cluster centres, per segment name
SIGNATURES: dict[str, dict[str, float]] = {
    "Enthusiasts": {"orders": 1.0, "aov": 0.5, "opens": 1.0, "recency": -0.5},
    "Routine Buyers": {"irregularity": -1.5, "orders": 0.5, "aov": -0.5, "discount_share": -0.3},
    "Bargain Hunters": {"discount_share": 2.0},
    "Lapsed VIPs": {"spend_prior": 1.0, "trend": -1.5, "recency": 0.5},
    "Gift Givers": {"season_share": 2.0},
    "Browsers": {"browse_per_order": 1.5, "orders": -0.5},
}


def _weights() -> np.ndarray:
    w = np.zeros((len(NAMED), len(SEGMENT_FEATURES)))
    for i, name in enumerate(NAMED):
        for f, v in SIGNATURES[name].items():
            w[i, _F[f]] = v
    return w


@dataclass
class SegmentModel:
    mean: np.ndarray
    scale: np.ndarray
    kmeans: Any
    names: list[str]  # per cluster
    scores: np.ndarray = field(repr=False)  # signature score per (segment, cluster)

    def predict(self, feats: np.ndarray, tenure_days: np.ndarray) -> np.ndarray:
        """Segment index (into SEGMENTS) per member."""
        out = np.full(len(feats), SEGMENTS.index("New Members"), dtype=np.int8)
        old = tenure_days >= NEW_MEMBER_DAYS
        if old.any():
            z = (feats[old] - self.mean) / self.scale
            cl = self.kmeans.predict(z.astype(np.float64))
            lut = np.array([SEGMENTS.index(n) for n in self.names], dtype=np.int8)
            out[old] = lut[cl]
        return out

    def describe(self) -> list[dict[str, Any]]:
        """Every cluster: its name, size share in the fitting sample and standardized centre."""
        centres = self.kmeans.cluster_centers_
        sizes = np.bincount(self.kmeans.labels_, minlength=len(centres)) / max(len(self.kmeans.labels_), 1)
        return [{"cluster": i, "segment": self.names[i], "share_of_sample": round(float(sizes[i]), 4),
                 "signature_score": round(float(self.scores[NAMED.index(self.names[i]), i]), 3),
                 "centre_z": {f: round(float(v), 3) for f, v in zip(SEGMENT_FEATURES, centres[i])}}
                for i in range(len(centres))]


def fit_segments(sample: np.ndarray, tenure_days: np.ndarray, k: int = K, seed: int = 0) -> SegmentModel:
    """Fit on a sample of members' segment features (New Members left out by the tenure rule)."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.cluster import KMeans

    x = sample[tenure_days >= NEW_MEMBER_DAYS].astype(np.float64)
    if len(x) < k:
        raise ValueError(f"too few members to cluster ({len(x)} with at least {NEW_MEMBER_DAYS} days of tenure, "
                         f"k = {k})")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = (x - mean) / scale
    km = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(z)
    scores = _weights() @ km.cluster_centers_.T  # (named segment, cluster)
    rows, cols = linear_sum_assignment(-scores)
    names: list[str | None] = [None] * k
    for r, c in zip(rows, cols):
        names[c] = NAMED[r]
    for c in range(k):
        if names[c] is None:
            names[c] = NAMED[int(np.argmax(scores[:, c]))]
    return SegmentModel(mean=mean, scale=scale, kmeans=km, names=[str(n) for n in names], scores=scores)
