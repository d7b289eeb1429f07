"""The bundled victims: one folder per victim with `weights.safetensors` and `meta.json`.

Weights are loaded with safetensors into a freshly built network, so no pickled code runs.
`meta.json` says game, algorithm, network, seed, frames, wall time, hardware, the training
command, and the clean score measured by `rlattack eval --attack none`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from safetensors.torch import load_file

from rlattack.envs import OBS_SHAPE
from rlattack.errors import UserInputError
from rlattack.policies import Policy, from_sb3_policy, sb3_class

ZOO = Path(__file__).parent


@dataclass(frozen=True)
class Victim:
    """One bundled victim as listed by `rlattack zoo`."""

    name: str
    game: str
    algorithm: str
    n_actions: int
    frames: int
    clean_score: dict[str, Any] | None
    meta: dict[str, Any] = field(repr=False)

    @property
    def path(self) -> Path:
        return ZOO / self.name


def victims() -> list[Victim]:
    """Every bundled victim, sorted by name."""
    found = []
    for meta_path in sorted(ZOO.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        found.append(
            Victim(
                name=meta_path.parent.name,
                game=meta["game"],
                algorithm=meta["algorithm"],
                n_actions=int(meta["n_actions"]),
                frames=int(meta["frames"]),
                clean_score=meta.get("clean_score"),
                meta=meta,
            )
        )
    return found


def victim(name: str) -> Victim:
    """Look a victim up by name, with the list of names in the error."""
    by_name = {v.name: v for v in victims()}
    if name not in by_name:
        known = ", ".join(by_name) or "none bundled yet"
        raise UserInputError(f"unknown agent {name!r}: use a zoo name ({known}), sb3:PATH.zip or torch:PATH")
    return by_name[name]


def load_victim(name: str, device: str = "cpu") -> Policy:
    """Build the victim's network and load its weights (the target network is not shipped)."""
    v = victim(name)
    obs_space = spaces.Box(0, 255, OBS_SHAPE, np.uint8)
    network = sb3_class(v.algorithm).policy_aliases["CnnPolicy"]
    sb3_policy = network(obs_space, spaces.Discrete(v.n_actions), lambda _: 0.0)
    try:
        state = load_file(str(v.path / "weights.safetensors"))
    except Exception as e:  # safetensors raises its own error types for a damaged file
        raise UserInputError(f"cannot read weights of zoo victim {name}: {e}") from None
    missing, unexpected = sb3_policy.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("q_net_target.")]
    if missing or unexpected:
        raise UserInputError(f"zoo victim {name} has mismatched weights: {missing + unexpected}")
    return from_sb3_policy(v.algorithm, sb3_policy.to(device), name=name)
