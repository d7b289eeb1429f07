"""When to attack: every step, every N steps, with probability p, or strategically timed.

A schedule sees each env's step index within its current game (and, if it asks for them, the
policy's clean logits) and answers which envs are attacked at this step, so a batch of envs at
different points of their games is handled at once.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from rlattack.errors import UserInputError


class Schedule(Protocol):
    needs_logits: bool
    """whether `__call__` reads the policy's clean logits (the attacker computes them only then)"""

    def __call__(self, steps: np.ndarray, logits: Tensor | None = None) -> np.ndarray:
        """Boolean mask, one entry per env, given each env's step index within its game."""
        ...


class EveryStep:
    """Attack every observation (Huang et al. 2017)."""

    needs_logits = False

    def __call__(self, steps: np.ndarray, logits: Tensor | None = None) -> np.ndarray:
        return np.ones(len(steps), dtype=bool)

    def __repr__(self) -> str:
        return "every"


class EveryN:
    """Attack steps 0, n, 2n, ... of each game."""

    needs_logits = False

    def __init__(self, n: int) -> None:
        if n < 1:
            raise UserInputError(f"every:N needs N >= 1, got {n}")
        self.n = n

    def __call__(self, steps: np.ndarray, logits: Tensor | None = None) -> np.ndarray:
        return steps % self.n == 0

    def __repr__(self) -> str:
        return f"every:{self.n}"


class WithProbability:
    """Attack each step independently with probability p (seeded, so runs repeat)."""

    needs_logits = False

    def __init__(self, p: float, seed: int = 0) -> None:
        if not 0.0 <= p <= 1.0:
            raise UserInputError(f"prob:P needs 0 <= P <= 1, got {p}")
        self.p = p
        self.rng = np.random.default_rng(seed)

    def __call__(self, steps: np.ndarray, logits: Tensor | None = None) -> np.ndarray:
        return self.rng.random(len(steps)) < self.p

    def __repr__(self) -> str:
        return f"prob:{self.p}"


class Timed:
    """Strategically-timed attack (Lin et al. 2017): attack where the policy's preference
    max(pi) - min(pi) is at least beta, pi the softmax of the logits (of the Q-values for DQN).

    Lin et al. pair it with a targeted attack towards the least-preferred action
    (`--target least-likely`); any attack can craft the perturbation.
    """

    needs_logits = True

    def __init__(self, beta: float) -> None:
        if not 0.0 <= beta <= 1.0:
            raise UserInputError(f"timed:BETA needs 0 <= BETA <= 1, got {beta}")
        self.beta = beta

    def __call__(self, steps: np.ndarray, logits: Tensor | None = None) -> np.ndarray:
        if logits is None:
            raise ValueError("the timed schedule needs the policy's logits")
        pi = torch.softmax(logits.float(), dim=1)
        preference = pi.max(dim=1).values - pi.min(dim=1).values
        return (preference >= self.beta).cpu().numpy()

    def __repr__(self) -> str:
        return f"timed:{self.beta}"


FORMS = "every, every:N (N >= 1), prob:P (0 <= P <= 1) or timed:BETA (0 <= BETA <= 1)"
"""What `parse_schedule` takes, with the allowed range of each number."""


def parse_schedule(spec: str, seed: int = 0) -> Schedule:
    """`every`, `every:N`, `prob:P` or `timed:BETA`, as written on the command line and in configs.

    A number out of its range is refused by the schedule itself, with that range.
    """
    if spec == "every":
        return EveryStep()
    kind, colon, arg = spec.partition(":")
    number = {"every": int, "prob": float, "timed": float}.get(kind)
    try:
        value = number(arg) if number is not None and colon else None
    except ValueError:
        value = None
    if value is None:
        raise UserInputError(f"bad schedule {spec!r}: use {FORMS}")
    if kind == "every":
        return EveryN(int(value))
    if kind == "prob":
        return WithProbability(value, seed)
    return Timed(value)
