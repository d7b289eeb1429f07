"""The smallest eps at which a policy's worst-case return falls below a threshold.

The worst-case return is taken to fall as eps grows (a larger ball holds every attack of a
smaller one), so bisection between an eps known to hold and one known to break finds the edge to
a tolerance the user states, in about log2(range / tolerance) evaluations of the attack set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rlattack.errors import UserInputError


@dataclass
class Search:
    """The outcome of `find_eps`."""

    eps: float | None
    """the smallest eps found to break the policy (within `tolerance`), None if `high` holds"""
    evaluations: int
    """evaluations of the attack set the search itself ran (beyond those it was given)"""
    tolerance: float


def find_eps(
    worst_return: Callable[[float], float],
    threshold: float,
    known: dict[float, float],
    high: float,
    tolerance: float,
) -> Search:
    """Bisect for the smallest eps with `worst_return(eps) < threshold`, in (0, `high`].

    `known` holds worst-case returns already measured (eps -> return; eps 0 is the clean return):
    they narrow the first bracket and cost nothing.
    """
    if not tolerance > 0 or not high > 0:
        raise UserInputError(
            f"the search needs a tolerance > 0 and a largest eps > 0, got {tolerance}, {high}"
        )
    seen, evaluations = dict(known), 0

    def at(eps: float) -> float:
        nonlocal evaluations
        if eps not in seen:
            seen[eps] = worst_return(eps)
            evaluations += 1
        return seen[eps]

    if at(high) >= threshold:
        return Search(None, evaluations, tolerance)
    low = max((e for e, r in seen.items() if e < high and r >= threshold), default=0.0)
    high = min(e for e, r in seen.items() if e > low and r < threshold)
    while high - low > tolerance:
        middle = (low + high) / 2
        low, high = (middle, high) if at(middle) >= threshold else (low, middle)
    return Search(high, evaluations, tolerance)
