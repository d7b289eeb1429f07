"""States of a policy's own play, recorded with its actions: what a substitute learns from, and
where certificates and the robustness checks are taken."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from tqdm import tqdm

from rlattack.envs import make_vector_env
from rlattack.errors import UserInputError
from rlattack.policies import Policy


class Actor(Protocol):
    """What plays: actions for uint8 observations (a policy's greedy choice, or a counted oracle)."""

    n_actions: int
    obs_shape: tuple[int, ...]

    def __call__(self, obs: np.ndarray) -> np.ndarray: ...


class Greedy:
    """A policy's greedy actions, as an `Actor`."""

    def __init__(self, policy: Policy) -> None:
        self.policy, self.n_actions, self.obs_shape = policy, policy.n_actions, policy.obs_shape

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.act(obs)


@dataclass
class Dataset:
    """Observations and the target's actions on them."""

    obs: np.ndarray
    """(N, *obs_shape) uint8"""
    actions: np.ndarray
    """(N,) int64"""

    def __len__(self) -> int:
        return len(self.actions)

    def __add__(self, other: Dataset) -> Dataset:
        return Dataset(np.concatenate([self.obs, other.obs]), np.concatenate([self.actions, other.actions]))


def watch(
    oracle: Actor,
    game: str,
    states: int,
    envs: int = 8,
    seed: int = 0,
    *,
    progress: bool = True,
    explore: float = 0.0,
    sticky: float = 0.0,
    every: int = 1,
) -> Dataset:
    """Let the target play `game` and record `states` observations with its actions.

    Every state the target acts on is a query. With `explore` > 0 the attacker runs the game and,
    with that probability, plays one of the other actions at random instead of the target's: the
    states stray from the few games a greedy target replays in a deterministic game, while every
    label is still the target's answer. `sticky` repeats the previous action with that probability
    in the emulator. `every` records steps 0, `every`, 2 * `every`, ... of the envs (the target
    still acts on every step, so that costs about `every` queries per recorded state), so that a
    held-out set spans whole games rather than their openings.
    """
    if states < 1 or every < 1:
        raise UserInputError(f"need at least one state to watch and every >= 1, got {states} and {every}")
    if not 0.0 <= explore <= 1.0:
        raise UserInputError(f"the exploration probability must be in [0, 1], got {explore}")
    env = make_vector_env(game, min(envs, states), sticky=sticky)
    rng = np.random.default_rng(seed)
    try:
        n_actions = int(env.single_action_space.n)
        if n_actions != oracle.n_actions:
            raise UserInputError(
                f"action-space mismatch: the target has {oracle.n_actions} actions, {game} has {n_actions}"
            )
        obs_buf = np.empty((states, *oracle.obs_shape), dtype=np.uint8)
        act_buf = np.empty(states, dtype=np.int64)
        obs, _ = env.reset(seed=seed)
        n = 0
        with tqdm(total=states, unit="state", desc="watching", disable=not progress, leave=False) as bar:
            step = 0
            while True:
                record = step % every == 0
                take = min(len(obs), states - n) if record else len(obs)
                actions = oracle(obs[:take])  # the last batch asks only about the states it keeps
                if record:
                    obs_buf[n : n + take], act_buf[n : n + take] = obs[:take], actions
                    n += take
                    bar.update(take)
                if n == states:
                    return Dataset(obs_buf, act_buf)
                wander = rng.random(len(obs)) < explore
                other = rng.integers(1, n_actions, size=len(obs)) if n_actions > 1 else 0
                obs = env.step(np.where(wander, (actions + other) % n_actions, actions))[0]
                step += 1
    finally:
        env.close()
