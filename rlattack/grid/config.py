"""A grid's config file and the cells it expands to.

A grid is games x agents x attacks x norms x eps x seeds x schedules; each cell is one batched
evaluation. An `attacks` entry names an attack and may carry its own `eps` / `norms` axes and the
attack's options (`steps`, `target`, `theta`, ...), validated as an `AttackSpec`. Cells are named
by a hash of their parameters, so a re-run finds the cells it has already computed.

The clean baseline (`attack: none`) does not depend on norm, eps or schedule: it is one cell per
game, agent and seed, with `norm: null`, `eps: 0`, `schedule: every`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rlattack import zoo
from rlattack.attacks.base import Surface
from rlattack.attacks.spec import OPTIONS, AttackSpec, Eps, NormName
from rlattack.envs import rom_id
from rlattack.errors import UserInputError, explain
from rlattack.rollout.attacker import Act
from rlattack.schedules import parse_schedule

EXECUTION_FIELDS = {"device", "threads"}
"""Settings that say how a grid runs, not what it computes: changing them keeps the results."""


class AttackEntry(BaseModel):
    """One entry of `attacks`: a name, optional own `eps` / `norms` axes, and the attack's options
    (any of `rlattack.attacks.spec.OPTIONS`), kept as written so that cell ids stay stable."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    eps: list[Eps] | None = Field(default=None, min_length=1)
    norms: list[NormName] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _options_fit_the_attack(self) -> AttackEntry:
        unknown = sorted(set(self.options) - set(OPTIONS))
        if unknown:
            raise ValueError(
                f"attack {self.name!r} does not take {', '.join(unknown)} "
                f"(an entry takes name, eps, norms and {', '.join(OPTIONS)})"
            )
        AttackSpec.parse(name=self.name, **self.options)
        return self

    @property
    def options(self) -> dict[str, Any]:
        return dict(sorted((self.model_extra or {}).items()))


class GridConfig(BaseModel):
    """A grid config file (YAML or TOML); every key is optional except `agents`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: list[str] = Field(min_length=1, description="zoo names, sb3:PATH.zip or torch:PATH")
    games: list[str] | None = Field(
        default=None, min_length=1, description="ALE games; default: each zoo victim's own game"
    )
    attacks: list[AttackEntry] = Field(default=[AttackEntry(name="fgsm")], min_length=1)
    norms: list[NormName] = Field(default=["inf"], min_length=1)
    eps: list[Eps] = Field(default=[], description="budgets on the [0, 1] scale, or 'k/255'")
    seeds: list[int] = Field(default=[0], min_length=1)
    schedules: list[str] = Field(default=["every"], min_length=1)
    episodes: int = Field(default=10, ge=1, description="whole games per cell")
    envs: int = Field(default=10, ge=1, description="envs per cell (K); games are split across them")
    surface: Surface = "stack"
    quantize: bool = False
    act: Act = Field(default="greedy", description="the agent's actions: greedy, or sampled from its policy")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(default=1, ge=1, description="torch CPU threads per cell")

    @field_validator("attacks", mode="before")
    @classmethod
    def _names_are_entries(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("schedules")
    @classmethod
    def _schedules_parse(cls, value: list[str]) -> list[str]:
        for spec in value:
            parse_schedule(spec)
        return value

    def identity(self) -> dict[str, Any]:
        """What the grid computes (not how it runs): equal identities give the same cells.
        Greedy actions, the default, are left out, so grids written before `act` keep theirs."""
        left_out = EXECUTION_FIELDS | ({"act"} if self.act == "greedy" else set())
        return self.model_dump(mode="json", exclude=left_out)


class Cell(BaseModel):
    """One evaluation of a grid; its id is a hash of these fields, leaving out those at their
    default (a field added later, such as `act`, keeps the ids of earlier cells)."""

    model_config = ConfigDict(frozen=True)

    game: str
    agent: str
    attack: str
    options: dict[str, Any]
    norm: str | None
    eps: float
    schedule: str
    seed: int
    episodes: int
    envs: int
    surface: str
    quantize: bool
    act: str = "greedy"

    @property
    def id(self) -> str:
        text = json.dumps(self.model_dump(mode="json", exclude_defaults=True), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def spec(self) -> AttackSpec:
        """The cell's attack, as `rlattack eval` takes it."""
        return AttackSpec.parse(
            name=self.attack,
            eps=self.eps,
            norm=self.norm or "inf",
            surface=self.surface,
            quantize=self.quantize,
            **self.options,
        )

    @property
    def label(self) -> str:
        seed = f" seed={self.seed}" + ("" if self.act == "greedy" else f" act={self.act}")
        return f"{self.agent} {self.game} {self.spec.label(self.schedule)}{seed}"


def load_grid(path: Path) -> GridConfig:
    """Read and validate a YAML or TOML grid; any problem is one UserInputError line."""
    if not path.is_file():
        raise UserInputError(f"no such config file: {path}")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            raw = yaml.safe_load(text)
        elif path.suffix == ".toml":
            raw = tomllib.loads(text)
        else:
            raise UserInputError(f"config {path} must end in .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
        raise UserInputError(f"cannot parse {path}: {' '.join(str(e).split())}") from None
    if not isinstance(raw, dict):
        raise UserInputError(f"config {path} must be a mapping of keys such as agents, eps, seeds")
    try:
        return GridConfig(**raw)
    except ValidationError as e:
        raise UserInputError(f"bad config {path}: {explain(e, allowed=GridConfig.model_fields)}") from None


def expand(grid: GridConfig) -> list[Cell]:
    """Every cell of the grid, in a stable order, each once."""
    cells: dict[str, Cell] = {}
    for agent in grid.agents:
        for game in grid.games or [zoo.game_of(agent, asked_as="`games` in the config")]:
            for seed, entry in itertools.product(grid.seeds, grid.attacks):
                common = dict(game=rom_id(game), agent=agent, seed=seed, episodes=grid.episodes)
                common |= dict(envs=grid.envs, surface=grid.surface, quantize=grid.quantize, act=grid.act)
                if entry.name == "none":
                    cell = Cell(attack="none", options={}, norm=None, eps=0.0, schedule="every", **common)
                    cells.setdefault(cell.id, cell)
                    continue
                budgets = entry.eps if entry.eps is not None else grid.eps
                if not budgets:
                    raise UserInputError(f"attack {entry.name!r} needs eps values (in the grid or its entry)")
                for norm, eps, schedule in itertools.product(
                    entry.norms or grid.norms, budgets, grid.schedules
                ):
                    cell = Cell(
                        attack=entry.name,
                        options=entry.options,
                        norm=norm,
                        eps=eps,
                        schedule=schedule,
                        **common,
                    )
                    cells.setdefault(cell.id, cell)
    return list(cells.values())
