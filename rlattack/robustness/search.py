"""The smallest eps at which a policy's worst-case return falls below a threshold.

The worst-case return is taken to fall as eps grows (a larger ball holds every attack of a
smaller one), so bisection between an eps known to hold and one known to break finds the edge to
a tolerance the user states, in about log2(range / tolerance) evaluations of the attack set.

Where even the lowest eps tried breaks the policy, the bracket's low end is 0 and bisection alone
would stop at "below the tolerance". The search then keeps halving, down to a floor (a 16th of
the tolerance by default), so the answer is a bracket [low, high] with low > 0, or "at most the
floor".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rlattack.errors import UserInputError
from rlattack.plots import gray_levels

FLOOR_SHARE = 1 / 16
"""The search's floor as a share of its tolerance: 1/64 of a gray level for the default 1/1020."""


@dataclass
class Search:
    """The outcome of `find_eps`: the edge lies in (low, high]."""

    eps: float | None
    """the smallest eps found to break the policy (the bracket's high end), None if `high` holds"""
    evaluations: int
    """evaluations of the attack set the search itself ran (beyond those it was given)"""
    tolerance: float
    low: float = 0.0
    """the largest eps found to hold (0: none below `eps` did, down to the floor)"""
    floor: float = 0.0
    points: dict[float, float] = field(default_factory=dict)
    """every eps the search knows, given or evaluated, and its worst-case return"""

    @property
    def bracket(self) -> tuple[float, float] | None:
        return None if self.eps is None else (self.low, self.eps)

    def text(self, largest: float) -> str:
        """The answer in words, in gray levels; `largest` is the eps a None answer held up to."""
        if self.eps is None:
            return f"none up to {gray_levels(largest)} (the largest eps tried)"
        if self.low == 0:
            return f"at most {gray_levels(self.eps)} (it breaks at the search's floor)"
        return f"between {gray_levels(self.low)} and {gray_levels(self.eps)}"


def find_eps(
    worst_return: Callable[[float], float],
    threshold: float,
    known: dict[float, float],
    high: float,
    tolerance: float,
    floor: float | None = None,
) -> Search:
    """Bisect for the smallest eps with `worst_return(eps) < threshold`, in (0, `high`].

    `known` holds worst-case returns already measured (eps -> return; eps 0 is the clean return):
    they narrow the first bracket and cost nothing. Below the lowest eps that holds, the search
    halves down to `floor` (default `FLOOR_SHARE` of the tolerance).
    """
    if not tolerance > 0 or not high > 0:
        raise UserInputError(
            f"the search needs a tolerance > 0 and a largest eps > 0, got {tolerance}, {high}"
        )
    floor = tolerance * FLOOR_SHARE if floor is None else floor
    seen, evaluations = dict(known), 0

    def at(eps: float) -> float:
        nonlocal evaluations
        if eps not in seen:
            seen[eps] = worst_return(eps)
            evaluations += 1
        return seen[eps]

    if at(high) >= threshold:
        return Search(None, evaluations, tolerance, high, floor, dict(sorted(seen.items())))
    low = max((e for e, r in seen.items() if e < high and r >= threshold), default=0.0)
    high = min(e for e, r in seen.items() if e > low and r < threshold)
    while high - low > tolerance or (low == 0 and high / 2 >= floor):
        middle = (low + high) / 2
        low, high = (middle, high) if at(middle) >= threshold else (low, middle)
    return Search(high, evaluations, tolerance, low, floor, dict(sorted(seen.items())))
