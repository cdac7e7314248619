"""``contentgen score``: segments, churn risk and product affinities from raw data (see run.py)."""

from .raw import RawInputs, find_inputs
from .run import ScoreOptions, run_score

__all__ = ["RawInputs", "ScoreOptions", "find_inputs", "run_score"]
