"""Grids of attacked evaluations from a config file, run cell by cell into a results directory.

A grid is games x agents x attacks x norms x eps x seeds x schedules; each cell is one batched
`evaluate(...)` call (K envs, one attack call per step), seeded by the cell's seed exactly as
`rlattack eval --seed S` is, so a cell repeats `eval` with the same options. Cells are named
by a hash of their parameters: re-running a grid skips every cell whose record exists and was
measured on the weights its agent holds now (`weights_digest`), on any backend (`local`: one
cell after another in this process; `ray`: cells as Ray tasks, records still written here by
this process only).

The clean baseline (`attack: none`) does not depend on norm, eps or schedule: it is one cell per
game, agent and seed, with `norm: null`, `eps: 0`, `schedule: every`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator
from tqdm import tqdm

from rlattack.attacker import Act, check_act
from rlattack.attacks import Attack, build_attack
from rlattack.envs import make_vector_env, rom_id
from rlattack.errors import UserInputError
from rlattack.files import atomic_write
from rlattack.policies import Policy, load_policy, resolve_device, weights_digest
from rlattack.runner import evaluate
from rlattack.schedules import parse_schedule
from rlattack.store import ResultStore, code_version, now

# Settings that say how a grid runs, not what it computes: changing them keeps the results.
EXECUTION_FIELDS = {"device", "threads"}


def _budget(value: Any) -> float:
    """An eps as a number or as a fraction of gray levels such as "2/255"."""
    if isinstance(value, str) and "/" in value:
        top, _, bottom = value.partition("/")
        try:
            value = float(top) / float(bottom)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"eps {value!r} is not a number or a fraction like 2/255") from None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"eps must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {value!r}")
    return value


Eps = Annotated[float, BeforeValidator(_budget)]
# YAML reads `norms: [inf, 2, 1]` as a string and two ints.
NormName = Annotated[Literal["inf", "2", "1"], BeforeValidator(lambda v: str(v))]


class AttackSpec(BaseModel):
    """One entry of `attacks`: a name, optional own `eps` / `norms` axes, and options.

    Any other key (PGD's `steps`, JSMA's `theta`, ...) is passed to `build_attack` as a keyword,
    so attacks added there are configurable here without changes.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    eps: list[Eps] | None = Field(default=None, min_length=1)
    norms: list[NormName] | None = Field(default=None, min_length=1)

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
    attacks: list[AttackSpec] = Field(default=[AttackSpec(name="fgsm")], min_length=1)
    norms: list[NormName] = Field(default=["inf"], min_length=1)
    eps: list[Eps] = Field(default=[], description="budgets on the [0, 1] scale, or 'k/255'")
    seeds: list[int] = Field(default=[0], min_length=1)
    schedules: list[str] = Field(default=["every"], min_length=1)
    episodes: int = Field(default=10, ge=1, description="whole games per cell")
    envs: int = Field(default=10, ge=1, description="envs per cell (K); games are split across them")
    surface: Literal["stack", "frame"] = "stack"
    quantize: bool = False
    act: Act = Field(default="greedy", description="the agent's actions: greedy, or sampled from its policy")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = Field(default=1, ge=1, description="torch CPU threads per cell")

    @field_validator("attacks", mode="before")
    @classmethod
    def _names_are_specs(cls, value: Any) -> Any:
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
        Greedy actions, the default, are left out, as before `act` existed."""
        left_out = EXECUTION_FIELDS | ({"act"} if self.act == "greedy" else set())
        return self.model_dump(mode="json", exclude=left_out)


class Cell(BaseModel):
    """One evaluation of a grid; its id is a hash of these fields, leaving out those at their
    default (fields added later, such as `act`, keep the ids of earlier cells)."""

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
    def label(self) -> str:
        seed = f" seed={self.seed}" + ("" if self.act == "greedy" else f" act={self.act}")
        if self.attack == "none":
            return f"{self.agent} {self.game} clean{seed}"
        options = "".join(f" {k}={v}" for k, v in self.options.items())
        when = "" if self.schedule == "every" else f" {self.schedule}"
        return f"{self.agent} {self.game} {self.attack}{options} L{self.norm} eps={self.eps:g}{when}{seed}"


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
        raise UserInputError(f"bad config {path}: {_explain(e)}") from None


def _explain(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "config"
        if item["type"] == "extra_forbidden":
            allowed = ", ".join(GridConfig.model_fields)
            problems.append(f"unknown key {where!r} (allowed: {allowed})")
        else:
            problems.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def expand(grid: GridConfig) -> list[Cell]:
    """Every cell of the grid, in a stable order, each once."""
    cells: dict[str, Cell] = {}
    for agent in grid.agents:
        for game in grid.games or [_zoo_game(agent)]:
            for seed, spec in itertools.product(grid.seeds, grid.attacks):
                common = dict(game=rom_id(game), agent=agent, seed=seed, episodes=grid.episodes)
                common |= dict(envs=grid.envs, surface=grid.surface, quantize=grid.quantize, act=grid.act)
                if spec.name == "none":
                    cell = Cell(attack="none", options={}, norm=None, eps=0.0, schedule="every", **common)
                    cells.setdefault(cell.id, cell)
                    continue
                budgets = spec.eps if spec.eps is not None else grid.eps
                if not budgets:
                    raise UserInputError(f"attack {spec.name!r} needs eps values (in the grid or its entry)")
                axes = itertools.product(spec.norms or grid.norms, budgets, grid.schedules)
                for norm, eps, schedule in axes:
                    cell = Cell(
                        attack=spec.name,
                        options=spec.options,
                        norm=norm,
                        eps=eps,
                        schedule=schedule,
                        **common,
                    )
                    cells.setdefault(cell.id, cell)
    return list(cells.values())


def _zoo_game(agent: str) -> str:
    from agents.zoo import victims

    game = {v.name: v.game for v in victims()}.get(agent)
    if game is None:
        raise UserInputError(
            f"agent {agent!r} needs `games` in the config (only zoo victims know their game)"
        )
    return game


def build_cell_attack(cell: Cell) -> Attack | None:
    """The cell's attack, as `rlattack eval` would build it (None for the clean baseline)."""
    try:
        return build_attack(
            cell.attack, cell.eps, cell.norm or "inf", cell.surface, cell.quantize, cell.seed, **cell.options
        )
    except TypeError as e:
        raise UserInputError(f"attack {cell.attack!r} does not take options {cell.options}: {e}") from None


def check_cells(cells: list[Cell]) -> None:
    """Fail before the first cell runs: attacks must build, agents must fit their games and
    how they act."""
    for cell in {(c.attack, json.dumps(c.options), c.norm, c.eps): c for c in cells}.values():
        build_cell_attack(cell)
    actions = {}
    for game in {c.game for c in cells}:
        env = make_vector_env(game, 1)
        actions[game] = (int(env.single_action_space.n), env.single_observation_space.shape)
        env.close()
    for agent, game, act in sorted({(c.agent, c.game, c.act) for c in cells}):
        policy = _policy(agent, "cpu")
        policy.check_fits(*actions[game], game)
        check_act(policy, act)


@lru_cache(maxsize=8)
def _policy(agent: str, device: str) -> Policy:
    """Policies are frozen and stateless, so cells on the same worker share one copy."""
    return load_policy(agent, device)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with `n` intra-op threads: the same on every backend, so cells give the same numbers."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_cell(cell: Cell, device: str, threads: int, weights: str | None = None) -> dict[str, Any]:
    """Evaluate one cell and return its record (no files: the driver stores it).

    `weights` is the digest the driver found for the agent: a copy cached before the agent's file
    changed is loaded again, and a worker that finds other weights under the name refuses.
    """
    with torch_threads(threads):
        policy = _policy(cell.agent, resolve_device(device))
        digest = weights_digest(policy)
        if weights is not None and digest != weights:
            _policy.cache_clear()
            policy = _policy(cell.agent, resolve_device(device))
            digest = weights_digest(policy)
            if digest != weights:
                raise UserInputError(
                    f"agent {cell.agent} holds other weights on this worker than where the grid started"
                )
        attack = build_cell_attack(cell)
        schedule = parse_schedule(cell.schedule, cell.seed)
        games = (cell.episodes, cell.envs, cell.seed)
        result = evaluate(policy, cell.game, attack, schedule, *games, progress=False, act=cell.act)
    return {
        "id": cell.id,
        "cell": cell.model_dump(mode="json"),
        **result.to_dict(),
        "weights": digest,
        "device": str(policy.device),
        "threads": threads,
        "code": code_version(),
        "finished_at": now(),
    }


@dataclass
class GridRun:
    """What a call of `run_grid` did."""

    store: ResultStore
    cells: list[Cell]
    skipped: int
    computed: int
    replayed: int = 0
    """cells computed again: their record was measured on weights the agent no longer holds"""
    left_out: list[str] = field(default_factory=list)
    """zoo names of the config that are not bundled yet (`skip_missing`)"""


Backend = Literal["local", "ray"]


def run_grid(
    config: Path,
    out: Path,
    backend: Backend = "local",
    device: str | None = None,
    ray_address: str | None = None,
    extend: bool = False,
    progress: bool = True,
    skip_missing: bool = False,
) -> GridRun:
    """Run every cell of `config` that `out` does not hold yet; see the module docstring.

    With `skip_missing`, zoo names that are not bundled yet are left out instead of refused: the
    grid keeps its identity, so their cells join the same results once they are bundled.
    """
    from agents.zoo import not_bundled

    if backend not in ("local", "ray"):
        raise UserInputError(f"unknown backend {backend!r}; choose local or ray")
    grid = load_grid(config)
    left_out = not_bundled(grid.agents) if skip_missing else []
    present = [agent for agent in grid.agents if agent not in left_out]
    if not present:
        raise UserInputError(f"none of the agents of {config} is bundled yet: {', '.join(left_out)}")
    if left_out:  # said before the first cell, so an interrupted run has said it too
        tqdm.write(f"left out, not in the zoo yet: {', '.join(left_out)}")
    cells = expand(grid.model_copy(update={"agents": present}))
    _policy.cache_clear()  # copies loaded before an agent's file changed; the check loads them afresh
    check_cells(cells)
    device = device or grid.device
    resolve_device(device)
    store = ResultStore(out)
    with store.lock():
        _record_run(store, grid, config, backend, device, extend, left_out)
        store.write_summary()  # reads every record: a damaged one stops the run before it starts
        # A name can hold other weights later (a victim trained further): its cells play again.
        digests = {agent: weights_digest(_policy(agent, "cpu")) for agent in {c.agent for c in cells}}
        done = store.finished()
        pending = [c for c in cells if done.get(c.id) != digests[c.agent]]
        replayed = sum(c.id in done for c in pending)
        run = GridRun(store, cells, len(cells) - len(pending), 0, replayed, left_out)
        bar = tqdm(total=len(cells), initial=run.skipped, unit="cell", disable=not progress)

        def finished(record: dict[str, Any]) -> None:
            store.save(record)
            store.write_summary()
            run.computed += 1
            bar.update(1)
            bar.set_postfix(last=f"{record['summary']['return_mean']:.1f}")

        try:
            if backend == "ray":
                _run_ray(pending, device, grid.threads, digests, ray_address, finished)
            else:
                for cell in pending:
                    finished(run_cell(cell, device, grid.threads, digests[cell.agent]))
        finally:
            bar.close()
            store.write_summary()
    return run


def _record_run(
    store: ResultStore,
    grid: GridConfig,
    config: Path,
    backend: str,
    device: str,
    extend: bool,
    left_out: list[str],
) -> None:
    """Keep the config and code version with the results; refuse a different grid unless asked."""
    info = store.run_info() or {"grid": grid.identity(), "created": now(), "runs": [], "earlier_grids": []}
    if info["grid"] != grid.identity():
        now_grid = grid.identity()
        changed = sorted(
            k for k in info["grid"].keys() | now_grid.keys() if info["grid"].get(k) != now_grid.get(k)
        )
        if not extend:
            raise UserInputError(
                f"{store.root} holds results of a different grid (changed: {', '.join(changed)}); "
                "use another --out, or --extend to add this grid's cells to it"
            )
        info["earlier_grids"].append(info["grid"])
        info["grid"] = grid.identity()
    code = code_version()
    info["code"] = code
    info["runs"].append(
        {"started": now(), "backend": backend, "device": device, "config": str(config), "code": code}
        | {"left_out": left_out}
    )
    atomic_write(store.root / f"config{config.suffix}", lambda p: p.write_text(config.read_text()))
    store.write_run_info(info)


def _run_ray(
    cells: list[Cell],
    device: str,
    threads: int,
    digests: dict[str, str],
    address: str | None,
    finished: Callable[[dict[str, Any]], None],
) -> None:
    """Cells as Ray tasks; each record comes back here as it finishes and is stored at once."""
    try:
        import ray
    except ImportError:
        raise UserInputError("--backend ray needs Ray: pip install 'rlattack[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        # address None: RAY_ADDRESS if set, else a new local instance.
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    gpus = 1 if device == "cuda" else 0
    task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(run_cell)
    pending = {task.remote(cell, device, threads, digests[cell.agent]): cell for cell in cells}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                try:
                    finished(ray.get(ref))
                except ray.exceptions.RayTaskError as e:
                    if isinstance(e.cause, UserInputError):
                        raise e.cause from None
                    raise
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
