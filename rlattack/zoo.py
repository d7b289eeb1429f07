"""The bundled victims' registry and loader: one folder per victim in `agents/zoo/`, read as data.

Each folder holds `weights.safetensors`, `meta.json`, `curve.csv` and `NOTES.md` (its training
history); the recipes in `agents/` write them, and this module only reads them.

Weights are loaded with safetensors into a freshly built network, so no pickled code runs, once
their sha256 matches the one `meta.json` records (`weights_sha256`).
`meta.json` says game, algorithm, network, seed, frames, wall time, hardware, the training
command, and the clean score measured by `rlattack eval --attack none`. A defended victim's
worst case under attack is read from its verdict in `experiments/robustness/results/`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlattack.errors import UserInputError
from rlattack.policies import Policy
from rlattack.safetensors_agent import build_architecture
from rlattack.weights import file_sha256, load_weights

ZOO = Path(__file__).resolve().parent.parent / "agents" / "zoo"
"""Where the victims live: beside the package, in a checkout and in an installed wheel alike."""

BARS = {"pong": 18.0, "space_invaders": 500.0, "seaquest": 500.0, "chopper_command": 1500.0}
"""The clean score a victim of each game is trained for. A victim below its bar is shipped only
with a note saying why (compute ran out, say)."""

ROBUSTNESS_BARS = {"pong": 15.0}
"""The worst case of `rlattack robustness` at eps `ROBUSTNESS_EPS` a defended victim of each game
is trained for, on top of its game's clean bar."""
ROBUSTNESS_EPS = 1 / 255
DEFENCES = ("sadqn", "advtrain", "distill")
"""Recipes that train a victim to resist attacks (`meta.json`'s `recipe`, else its algorithm)."""
VERDICTS = ZOO.parent.parent / "experiments" / "robustness" / "results"
"""Where `experiments/robustness` keeps each victim's verdict, `<victim>.json` (absent from a
wheel: its victims' worst cases are then not measured)."""

RANDOM_PLAY = {"pong": -20.7, "space_invaders": 148.0, "seaquest": 68.4, "chopper_command": 811.0}
"""The score of uniformly random actions (Mnih et al. 2015), the floor a learning curve starts at."""


@dataclass(frozen=True)
class Victim:
    """One bundled victim as listed by `rlattack zoo`."""

    name: str
    game: str
    algorithm: str
    n_actions: int
    frames: int
    clean_score: dict[str, Any] | None
    """greedy play, the convention, and what the bar is judged on"""
    clean_score_sampled: dict[str, Any] | None
    """actions sampled from the policy, as an actor-critic victim played in training"""
    meta: dict[str, Any] = field(repr=False)
    worst_case: float | None = None
    """the worst case over the attack set at `ROBUSTNESS_EPS` (`VERDICTS`), None if not measured"""

    @property
    def path(self) -> Path:
        return ZOO / self.name

    @property
    def bar(self) -> float | None:
        return BARS.get(self.game)

    @property
    def meets_bar(self) -> bool | None:
        """Whether the measured clean score reaches the game's bar (None: no score or no bar)."""
        if self.clean_score is None or self.bar is None:
            return None
        return self.clean_score["return_mean"] >= self.bar

    @property
    def defended(self) -> bool:
        """Trained to resist attacks (SA-DQN, adversarial training, certified distillation)."""
        return self.meta.get("recipe", self.algorithm) in DEFENCES

    @property
    def robustness_bar(self) -> float | None:
        """The worst case a defended victim is trained for; None for others and other games."""
        return ROBUSTNESS_BARS.get(self.game) if self.defended else None

    @property
    def meets_robustness_bar(self) -> bool | None:
        """Whether the measured worst case reaches the robustness bar (None: no bar or no verdict)."""
        if self.robustness_bar is None or self.worst_case is None:
            return None
        return self.worst_case >= self.robustness_bar


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
                clean_score_sampled=meta.get("clean_score_sampled"),
                meta=meta,
                worst_case=measured_worst_case(meta_path.parent.name),
            )
        )
    return found


def measured_worst_case(name: str, eps: float = ROBUSTNESS_EPS) -> float | None:
    """The worst case at `eps` in the victim's verdict under `VERDICTS`; None where it has none."""
    path = VERDICTS / f"{name}.json"
    if not path.is_file():
        return None
    rows = json.loads(path.read_text())["eps"]
    return next((r["worst_case"]["return_mean"] for r in rows if abs(r["eps"] - eps) < 1e-9), None)


RECIPES = ("dqn", "a3c", "trpo", "a2c", "ppo", "distill")
"""The recipes of `agents/`, the middle of a victim's name."""

PLANNED = re.compile(rf"({'|'.join(game.replace('_', '-') for game in BARS)})-({'|'.join(RECIPES)})(-s\d+)?")
"""Names a victim can be bundled under: GAME-ALGORITHM, or GAME-ALGORITHM-sSEED for another seed."""


def not_bundled(agents: Iterable[str]) -> list[str]:
    """The names among `agents` that a victim may be bundled under but none is yet, each once:
    what a grid planned for victims still in training leaves out. Files (`sb3:`, `torch:`, ...) and
    names outside the zoo's naming scheme (a typo, say) are not among them: loading refuses them.
    """
    names = {v.name for v in victims()}
    return [a for a in dict.fromkeys(agents) if PLANNED.fullmatch(a) and a not in names]


def skip_unbundled(**groups: list[str]) -> list[list[str]]:
    """Each group of names without those `not_bundled` (said once); a group left empty is refused."""
    left_out = not_bundled([name for names in groups.values() for name in names])
    if left_out:
        print(f"left out, not in the zoo yet: {', '.join(left_out)}")
    kept = [[name for name in names if name not in left_out] for names in groups.values()]
    for side, names in zip(groups, kept, strict=True):
        if not names:
            raise UserInputError(f"no --{side} is left: none of them is bundled yet")
    return kept


def victim(name: str) -> Victim:
    """Look a victim up by name, with the list of names in the error."""
    by_name = {v.name: v for v in victims()}
    if name not in by_name:
        known = ", ".join(by_name) or "none bundled yet"
        raise UserInputError(
            f"unknown agent {name!r}: use a zoo name ({known}), sb3:PATH.zip, safetensors:PATH or torch:PATH"
        )
    return by_name[name]


def game_of(agent: str, game: str | None = None, asked_as: str = "--game") -> str:
    """The game asked for, else a zoo victim's own; `asked_as` names where a file agent's game goes."""
    if game is not None:
        return game
    zoo_game = {v.name: v.game for v in victims()}.get(agent)
    if zoo_game is None:
        raise UserInputError(f"{asked_as} is needed for {agent} (only zoo victims know their game)")
    return zoo_game


def load_victim(name: str, device: str = "cpu") -> Policy:
    """Build the victim's network and load its weights (the target network is not shipped).

    A damaged tensor can still parse as safetensors and play a worse game unnoticed, so the file
    must match the sha256 its `meta.json` records; a victim still in training records none.
    """
    v = victim(name)
    kwargs = v.meta.get("network_kwargs", {})
    network, to_policy = build_architecture(v.algorithm, v.meta["network"], v.n_actions, kwargs, v.name)
    weights = v.path / "weights.safetensors"
    recorded = v.meta.get("weights_sha256")
    try:
        intact = recorded is None or file_sha256(weights) == recorded
        if intact:
            load_weights(network, weights)
    except Exception as e:  # safetensors raises its own error types for a damaged file
        raise UserInputError(f"cannot load weights of zoo victim {name}: {e}") from None
    if not intact:
        raise UserInputError(
            f"weights of zoo victim {name} do not match their recorded sha256 (damaged file?)"
        )
    return to_policy(network.to(device))
