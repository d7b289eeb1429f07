"""The robustness curve's area (the figure itself is `rlattack.plots.plot_curve`).

The area is a score in [0, 1]: the mean over [0, eps_max] of (worst-case return - random play) /
(clean - random play), by the trapezoid rule through the measured eps (the clean return at 0),
each point clipped to [0, 1]. 1: no attack of the set costs anything; 0: random play from the
smallest eps on.
"""

from __future__ import annotations

import numpy as np


def area(eps: list[float], worst: list[float], clean: float, random: float) -> float | None:
    """The normalised area under the worst-case curve; None where clean play is no better than random."""
    if not clean > random or not eps:
        return None
    xs = np.array([0.0, *eps])
    ys = np.clip((np.array([clean, *worst]) - random) / (clean - random), 0.0, 1.0)
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    trapezoids = np.diff(xs) * (ys[1:] + ys[:-1]) / 2
    return float(trapezoids.sum() / xs[-1]) if xs[-1] > 0 else None


def at_floor(worst: list[float], random: float) -> bool:
    """Every point at or below random play: the area is then the grid's floor (the first
    trapezoid alone), the same for an agent that plays +1 and one that plays +20, and the eps at
    which the agent breaks is the figure to compare instead."""
    return bool(worst) and all(w <= random for w in worst)
