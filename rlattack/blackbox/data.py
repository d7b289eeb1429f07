"""What the attacker learns from: states of the target's play labelled with its actions.

`rlattack.rollout.watch` records the target's own games; `unseen` keeps the held-out states that a
deterministic game did not repeat from the training set; `noise_stability` is a reference beside
the agreement.
"""

from __future__ import annotations

import hashlib

import numpy as np

from rlattack.blackbox.oracle import Oracle
from rlattack.rollout.watch import Dataset


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
