"""Weights-only agents: a network rlattack builds by name, its tensors read from safetensors.

`safetensors:PATH` runs nothing from its file: safetensors holds tensors and a header of text, no
pickle. The header's metadata names the architecture with the keys of a zoo victim's `meta.json`,
and the zoo builds its victims with the same `build_architecture`:

- `algorithm`: `a3c` or `distill`, rlattack's own networks (`rlattack.networks`, outputs logits), or an SB3
  algorithm whose `CnnPolicy` holds the network: `dqn`, `qrdqn` (Q-values), `a2c`, `ppo`, `trpo`;
- `network`: `nature-cnn`, `small-cnn` or `mlp` for `a3c` and `distill`; `nature-cnn` (SB3's
  `NatureCNN`) for SB3's;
- `n_actions`: how many actions the head has;
- `network_kwargs` (may be left out): a JSON object of SB3 `CnnPolicy` keywords from
  `rlattack.sb3.PLAIN_KWARGS` (`{"share_features_extractor": false}`, say).

Every tensor's name and shape must be the built network's own. `save_safetensors_agent` writes
such a file from a module or a state dict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from rlattack.errors import UserInputError
from rlattack.networks import build_network
from rlattack.observations import OBS_SHAPE
from rlattack.policies import Policy
from rlattack.sb3 import PLAIN_KWARGS, from_sb3_policy, sb3_class
from rlattack.weights import fit_weights, load_weights, save_weights, shipped_state

SB3_ALGORITHMS = ("dqn", "qrdqn", "a2c", "ppo", "trpo")
OWN_ALGORITHMS = ("a3c", "distill")
"""rlattack's own networks (`rlattack.networks`): A3C's actor-critics, and the students of
`agents.distill`, which output logits as they do."""
ARCHITECTURES = (*OWN_ALGORITHMS, *SB3_ALGORITHMS)
REQUIRED = ("algorithm", "network", "n_actions")
MAX_ACTIONS = 18
"""Atari's full action set: a header cannot make rlattack build a head larger than any game needs."""

Architecture = tuple[nn.Module, Callable[[nn.Module], Policy]]
"""A freshly built network, and how it becomes a `Policy` once its weights are in."""


def _check_sb3_kwargs(kwargs: dict[str, Any]) -> None:
    for key, value in kwargs.items():
        kind = PLAIN_KWARGS.get(key)
        if kind is None or not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise ValueError(
                f"network_kwargs {key} is not one of {', '.join(PLAIN_KWARGS)} with a JSON value of its type"
            )


def build_architecture(
    algorithm: str, network: str, n_actions: int, network_kwargs: dict[str, Any], name: str
) -> Architecture:
    """The network these names describe, untrained; ValueError, one line, where they describe none.

    Args:
        algorithm: `a3c` or `distill` (`rlattack.networks`) or one of `SB3_ALGORITHMS` (SB3's `CnnPolicy`).
        network: the name `rlattack.networks.build_network` knows; `nature-cnn` for SB3.
        n_actions: the size of the action head.
        network_kwargs: SB3 `CnnPolicy` keywords, plain JSON; none for our own networks.
        name: the policy's name in tables and errors.
    """
    if algorithm in OWN_ALGORITHMS:
        if network_kwargs:
            raise ValueError(
                f"{algorithm} networks take no network_kwargs (found {', '.join(network_kwargs)})"
            )
        built = build_network(network, OBS_SHAPE, n_actions)  # ValueError naming the known networks
        return built, lambda net: Policy(net, n_actions, name=name)
    if algorithm not in SB3_ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r} (known: {', '.join(ARCHITECTURES)})")
    if network != "nature-cnn":
        raise ValueError(f"SB3's {algorithm} CnnPolicy is a nature-cnn, not {network!r}")
    _check_sb3_kwargs(network_kwargs)
    policy_class = sb3_class(algorithm).policy_aliases["CnnPolicy"]
    obs_space = spaces.Box(0, 255, OBS_SHAPE, np.uint8)
    try:
        built = policy_class(obs_space, spaces.Discrete(n_actions), lambda _: 0.0, **network_kwargs)
    except Exception as e:  # SB3 asserts and raises many types on keywords that do not fit
        reason = " ".join(str(e).split())
        raise ValueError(f"cannot build SB3's {algorithm} CnnPolicy: {type(e).__name__}: {reason}") from None
    return built, lambda net: from_sb3_policy(algorithm, net, name=name)


def _architecture_of(metadata: dict[str, str] | None, name: str) -> Architecture:
    """The architecture a file's header names (see the module's docstring for its keys)."""
    metadata = metadata or {}
    missing = [key for key in REQUIRED if key not in metadata]
    if missing:
        raise ValueError(f"lacks the metadata {', '.join(missing)} (write it with save_safetensors_agent)")
    n_actions = metadata["n_actions"]
    if not re.fullmatch(r"\d{1,3}", n_actions) or not 1 <= int(n_actions) <= MAX_ACTIONS:
        raise ValueError(
            f"n_actions {n_actions[:20]!r} is not a whole number from 1 to {MAX_ACTIONS} "
            "(Atari's full action set)"
        )
    text = metadata.get("network_kwargs", "{}")
    try:
        kwargs = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's stack
        kwargs = None
    if not isinstance(kwargs, dict):
        raise ValueError(f"network_kwargs {text[:80]!r} is not a JSON object")
    return build_architecture(metadata["algorithm"], metadata["network"], int(n_actions), kwargs, name)


def load_safetensors_agent(path: str | Path, device: str = "cpu") -> Policy:
    """The agent `safetensors:PATH`: the network its header names, loaded with its tensors."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"no such safetensors agent file: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
    except (SafetensorError, OSError) as e:
        reason = " ".join(str(e).split())
        raise UserInputError(
            f"cannot load safetensors agent {path}: damaged or not a safetensors file ({reason})"
        ) from None
    try:
        network, to_policy = _architecture_of(metadata, f"safetensors:{path.name}")
        load_weights(network, path)
    except (ValueError, SafetensorError, OSError) as e:
        raise UserInputError(f"cannot load safetensors agent {path}: {' '.join(str(e).split())}") from None
    return to_policy(network.to(device))


def save_safetensors_agent(
    weights: nn.Module | Mapping[str, Tensor],
    path: str | Path,
    algorithm: str,
    n_actions: int,
    network: str = "nature-cnn",
    network_kwargs: dict[str, Any] | None = None,
) -> None:
    """Write `weights` as a `safetensors:PATH` agent: its tensors, and its architecture in the header.

    `weights` is a module or a state dict with exactly the names and shapes of the network the
    other arguments describe (see `build_architecture`); ValueError where it does not fit, and
    nothing is written. A plain PyTorch network is renamed to that network's names first.

    Example:
        >>> from rlattack.networks import nature_cnn
        >>> save_safetensors_agent(nature_cnn(6), "mine.safetensors", "a3c", n_actions=6)  # doctest: +SKIP
    """
    metadata = {
        "algorithm": algorithm,
        "network": network,
        "n_actions": str(n_actions),
        "network_kwargs": json.dumps(network_kwargs or {}),
    }
    built, _ = _architecture_of(metadata, name=str(path))
    fit_weights(built, shipped_state(weights) if isinstance(weights, nn.Module) else dict(weights))
    save_weights(built, Path(path), metadata)
