"""When to attack: every step, every N steps, or with probability p.

A schedule sees each env's step index within its current game and answers which envs are
attacked at this step, so a batch of envs at different points of their games is handled at once.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from rlattack.errors import UserInputError


class Schedule(Protocol):
    def __call__(self, steps: np.ndarray) -> np.ndarray:
        """Boolean mask, one entry per env, given each env's step index within its game."""
        ...


class EveryStep:
    """Attack every observation (Huang et al. 2017)."""

    def __call__(self, steps: np.ndarray) -> np.ndarray:
        return np.ones(len(steps), dtype=bool)

    def __repr__(self) -> str:
        return "every"


class EveryN:
    """Attack steps 0, n, 2n, ... of each game."""

    def __init__(self, n: int) -> None:
        if n < 1:
            raise UserInputError(f"every:N needs N >= 1, got {n}")
        self.n = n

    def __call__(self, steps: np.ndarray) -> np.ndarray:
        return steps % self.n == 0

    def __repr__(self) -> str:
        return f"every:{self.n}"


class WithProbability:
    """Attack each step independently with probability p (seeded, so runs repeat)."""

    def __init__(self, p: float, seed: int = 0) -> None:
        if not 0.0 <= p <= 1.0:
            raise UserInputError(f"prob:P needs 0 <= P <= 1, got {p}")
        self.p = p
        self.rng = np.random.default_rng(seed)

    def __call__(self, steps: np.ndarray) -> np.ndarray:
        return self.rng.random(len(steps)) < self.p

    def __repr__(self) -> str:
        return f"prob:{self.p}"


def parse_schedule(spec: str, seed: int = 0) -> Schedule:
    """`every`, `every:N` or `prob:P`, as written on the command line and in configs."""
    kind, _, arg = spec.partition(":")
    try:
        if kind == "every" and not arg:
            return EveryStep()
        if kind == "every":
            return EveryN(int(arg))
        if kind == "prob":
            return WithProbability(float(arg), seed)
    except ValueError:
        pass
    raise UserInputError(f"bad schedule {spec!r}: use every, every:N or prob:P")
