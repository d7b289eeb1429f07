"""The target as a black box: it answers greedy actions and counts every query against a budget."""

from __future__ import annotations

import numpy as np

from rlattack.errors import UserInputError
from rlattack.policies import Policy


class QueryBudgetExceeded(UserInputError):
    """The target was asked more than the attacker's budget allows."""


class Oracle:
    """A target that answers greedy actions for uint8 observations, counting every query.

    It keeps only the target's `act` method: answers are numpy integers, so nothing that could
    carry a gradient or a logit leaves it.
    """

    def __init__(self, policy: Policy, budget: int | None = None, batch_size: int = 256) -> None:
        if budget is not None and budget < 0:
            raise UserInputError(f"the query budget must be >= 0, got {budget}")
        self._act = policy.act
        self.n_actions = policy.n_actions
        self.obs_shape = policy.obs_shape
        self.budget = budget
        self.batch_size = batch_size
        self.queries = 0

    @property
    def remaining(self) -> int | None:
        """Queries left, or None without a budget."""
        return None if self.budget is None else self.budget - self.queries

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """The target's actions `(N,)` on observations `(N, *obs_shape)` of dtype uint8."""
        if not isinstance(obs, np.ndarray) or obs.dtype != np.uint8 or obs.shape[1:] != self.obs_shape:
            raise UserInputError(f"the oracle answers uint8 arrays of shape (N, {self.obs_shape}) only")
        n = len(obs)
        if self.remaining is not None and n > self.remaining:
            raise QueryBudgetExceeded(
                f"{n} more queries exceed the budget of {self.budget} ({self.queries} used)"
            )
        self.queries += n
        answers = [self._act(obs[i : i + self.batch_size]) for i in range(0, n, self.batch_size)]
        return np.concatenate(answers).astype(np.int64) if answers else np.empty(0, np.int64)
