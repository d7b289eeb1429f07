"""What the attacker learns from: states of the target's play labelled with its actions.

`watch` records the target's own games; `unseen` keeps the held-out states that a deterministic
game did not repeat from the training set; `noise_stability` is a reference beside the agreement.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from rlattack.blackbox.oracle import Oracle
from rlattack.envs import make_vector_env
from rlattack.errors import UserInputError


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
    oracle: Oracle,
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


def noise_stability(oracle: Oracle, data: Dataset, levels: int = 1, seed: int = 0) -> float:
    """How often the target keeps its action when every feature moves by +-`levels` gray levels
    at random (clipped to 0..255): a reference beside the agreement, not a bound on it. Actions
    that imperceptible noise overturns hang on detail that an imitator can hardly pin down.
    """
    rng = np.random.default_rng(seed)
    noisy = np.empty_like(data.obs)
    for i in range(0, len(data), 1024):  # bounded memory, as in `augment`
        part = data.obs[i : i + 1024].astype(np.int16)
        noisy[i : i + 1024] = np.clip(
            part + levels * rng.choice(np.array([-1, 1], np.int16), part.shape), 0, 255
        )
    return float((oracle(noisy) == data.actions).mean())


def _digests(obs: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(o.tobytes(), digest_size=16).digest() for o in obs]


def unseen(holdout: Dataset, seen: Dataset) -> Dataset:
    """The held-out states not found byte for byte in `seen`.

    Atari games without sticky actions are deterministic given their no-op start, and so is a
    greedy target: other games then repeat many training states exactly, and agreement on those
    would measure memory, not imitation.
    """
    known = set(_digests(seen.obs))
    keep = np.array([d not in known for d in _digests(holdout.obs)], dtype=bool)
    return Dataset(holdout.obs[keep], holdout.actions[keep])
