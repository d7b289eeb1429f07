"""Confidence intervals of mean game scores, honest at the few games an evaluation plays.

A Student t-interval on the mean of the games. Where every game scored the same, the sample says
nothing about the spread (a greedy Pong player replays one cycle per start, so two games can
match to the point), and there is no interval rather than a zero-width one. Means backed by fewer
than `FEW_GAMES` games are flagged wherever they are printed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

LEVEL = 0.95
FEW_GAMES = 5
"""Fewer games than this, and a mean is flagged as thin evidence."""


def mean_ci(scores: list[float], level: float = LEVEL) -> tuple[float, float, float]:
    """Mean and the two ends of its Student-t interval (NaN ends for one game, or all alike)."""
    x = np.asarray(scores, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    return mean, *_t_interval(mean, float(x.std(ddof=1)), len(x), level)


def summary_ci(summary: dict[str, Any], level: float = LEVEL) -> tuple[float, float]:
    """The interval of an evaluation summary's mean, from its mean, its std (over the games, as
    `rlattack eval` prints it) and its game count; NaN ends as in `mean_ci`."""
    n, mean = int(summary["episodes"]), float(summary["return_mean"])
    if n < 2:
        return math.nan, math.nan
    return _t_interval(mean, float(summary["return_std"]) * math.sqrt(n / (n - 1)), n, level)


def ci_pair(summary: dict[str, Any]) -> list[float] | None:
    """The interval of `summary_ci` as the JSON keeps it: [lo, hi], or None where there is none."""
    lo, hi = summary_ci(summary)
    return None if math.isnan(lo) else [lo, hi]


def ci_text(summary: dict[str, Any], digits: int = 1) -> str:
    """`[lo, hi]`, or why there is none: one game, or every game alike."""
    lo, hi = summary_ci(summary)
    if not math.isnan(lo):
        return f"[{lo:.{digits}f}, {hi:.{digits}f}]"
    n = int(summary["episodes"])
    return "n/a (one game)" if n < 2 else f"n/a (all {n} games alike)"


def evidence_warnings(label: str, summary: dict[str, Any]) -> list[str]:
    """What makes a mean thin evidence: fewer than `FEW_GAMES` games, or every game alike."""
    n, found = int(summary["episodes"]), []
    if n < FEW_GAMES:
        found.append(f"{label} rests on {n} game{'s' * (n != 1)} (fewer than {FEW_GAMES})")
    if n >= 2 and summary["return_std"] == 0:
        found.append(f"{label}: all {n} games scored {summary['return_mean']:g}, so they give no spread")
    return found


def _t_interval(mean: float, sd: float, n: int, level: float) -> tuple[float, float]:
    if sd == 0:
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n))
    return mean - half, mean + half
