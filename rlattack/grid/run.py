"""Running a grid cell by cell into a results directory, resumably.

Each cell is one batched `evaluate(...)` call (K envs, one attack call per step), seeded by the
cell's seed exactly as `rlattack eval --seed S` is, so a cell repeats `eval` with the same
options. Re-running a grid skips every cell whose record exists and was measured on the weights
its agent, and the surrogate it crafts on, hold now (`weights_digest`), on any backend (`local`:
one cell after another in this process; `ray`: cells as Ray tasks, records still written here by
this process only).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from tqdm import tqdm

from rlattack import zoo
from rlattack.attacks.targets import check_target
from rlattack.envs import make_vector_env
from rlattack.errors import UserInputError
from rlattack.files import atomic_write
from rlattack.grid.config import Cell, GridConfig, expand, load_grid
from rlattack.grid.ray_backend import require_ray, run_on_ray
from rlattack.grid.store import CellRecord, ResultStore
from rlattack.loading import load_policy
from rlattack.policies import Policy, resolve_device, weights_digest
from rlattack.provenance import code_version, now
from rlattack.rollout.attacker import check_act
from rlattack.rollout.evaluate import evaluate
from rlattack.schedules import parse_schedule


def check_cells(cells: list[Cell], policy_of: Callable[[str], Policy] | None = None) -> None:
    """Fail before the first cell runs: attacks must build, agents must fit their games and
    how they act, and a targeted attack's target must be an action of its game. `policy_of`
    gives an agent already loaded (default: load it by name)."""
    policy_of = policy_of or (lambda agent: _policy(agent, "cpu"))
    built = {(c.attack, json.dumps(c.options), c.norm, c.eps, c.game): c for c in cells}
    attacks = {key: cell.spec.build(cell.seed) for key, cell in built.items()}
    actions = {}
    for game in {c.game for c in cells}:
        env = make_vector_env(game, 1)
        actions[game] = (int(env.single_action_space.n), env.single_observation_space.shape)
        env.close()
    for key, attack in attacks.items():
        for surrogate in [] if attack is None else attack.surrogates():
            try:
                surrogate.check_fits(*actions[key[-1]], key[-1])
            except UserInputError as e:
                raise UserInputError(f"surrogate {surrogate.name}: {e}") from None
    for agent, game, act in sorted({(c.agent, c.game, c.act) for c in cells}):
        policy = policy_of(agent)
        policy.check_fits(*actions[game], game)
        check_act(policy, act)
    targets = {(c.options.get("target"), c.game) for c in cells}
    for target, game in sorted((t, g) for t, g in targets if t is not None):
        check_target(target, *actions[game], game)


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


def run_cell(
    cell: Cell, device: str, threads: int, weights: str | None = None, policy: Policy | None = None
) -> dict[str, Any]:
    """Evaluate one cell and return its record (no files: the driver stores it).

    `weights` is the digest the driver found for the agent: a copy cached before the agent's file
    changed is loaded again, and a worker that finds other weights under the name refuses.
    `policy` is the agent already loaded by the caller (the local backend), used as it is.
    """
    with torch_threads(threads):
        if policy is None:
            policy = _policy(cell.agent, resolve_device(device))
        else:
            policy = policy.to(resolve_device(device))
        digest = weights_digest(policy)
        if weights is not None and digest != weights:
            _policy.cache_clear()
            policy = _policy(cell.agent, resolve_device(device))
            digest = weights_digest(policy)
            if digest != weights:
                raise UserInputError(
                    f"agent {cell.agent} holds other weights on this worker than where the grid started"
                )
        attack = cell.spec.build(cell.seed)
        surrogates = [] if attack is None else attack.surrogates()
        schedule = parse_schedule(cell.schedule, cell.seed)
        games = (cell.episodes, cell.envs, cell.seed)
        result = evaluate(policy, cell.game, attack, schedule, *games, progress=False, act=cell.act)
    record = {
        "id": cell.id,
        "cell": cell.model_dump(mode="json"),
        **result.to_dict(),
        "weights": digest,
        "surrogate_weights": weights_digest(surrogates[0]) if surrogates else None,
        "device": str(policy.device),
        "threads": threads,
        "code": code_version(),
        "finished_at": now(),
    }
    CellRecord.model_validate(record, strict=True)  # as the store reads it back
    return record


@dataclass
class GridRun:
    """What a call of `run_grid` did."""

    store: ResultStore
    cells: list[Cell]
    skipped: int
    computed: int
    replayed: int = 0
    """cells computed again: their record was measured on weights the agent (or its surrogate) no
    longer holds"""
    left_out: list[str] = field(default_factory=list)
    """zoo names of the config that are not bundled yet (`skip_missing`)"""


Backend = Literal["local", "ray"]


def run_grid(
    config: Path | GridConfig,
    out: Path,
    backend: Backend = "local",
    device: str | None = None,
    ray_address: str | None = None,
    extend: bool = False,
    progress: bool = True,
    skip_missing: bool = False,
    loaded: dict[str, Policy] | None = None,
    written_as: str = "config.yaml",
) -> GridRun:
    """Run every cell of `config` that `out` does not hold yet; see the module docstring.

    `config` is a file, or a `GridConfig` built in memory (written into `out` as `written_as`,
    under the lock, with the run's other files). `loaded` holds agents the caller has already
    loaded, by name: they are not loaded again. With `skip_missing`, zoo names that are not
    bundled yet are left out instead of refused: the grid keeps its identity, so their cells join
    the same results once they are bundled.
    """
    if backend not in ("local", "ray"):
        raise UserInputError(f"unknown backend {backend!r}; choose local or ray")
    grid = config if isinstance(config, GridConfig) else load_grid(config)
    if isinstance(config, GridConfig):
        name, text = (
            written_as,
            yaml.safe_dump(config.model_dump(mode="json", exclude_defaults=True), sort_keys=False),
        )
    else:
        name, text = f"config{config.suffix}", config.read_text()
    loaded = loaded or {}

    def policy_of(agent: str) -> Policy:
        return loaded[agent] if agent in loaded else _policy(agent, "cpu")

    store = ResultStore(out)
    store.check_root()
    left_out = zoo.not_bundled(grid.agents) if skip_missing else []
    present = [agent for agent in grid.agents if agent not in left_out]
    if not present:
        raise UserInputError(f"none of the agents of {config} is bundled yet: {', '.join(left_out)}")
    if left_out:  # said before the first cell, so an interrupted run has said it too
        tqdm.write(f"left out, not in the zoo yet: {', '.join(left_out)}")
    cells = expand(grid.model_copy(update={"agents": present}))
    _policy.cache_clear()  # copies loaded before an agent's file changed; the check loads them afresh
    check_cells(cells, policy_of)
    device = device or grid.device
    resolve_device(device)
    if backend == "ray":
        require_ray()
    # A name can hold other weights later (a victim trained further): its cells play again, and so
    # do the cells that craft on it as a surrogate.
    digests = {agent: weights_digest(policy_of(agent)) for agent in {c.agent for c in cells}}
    surrogates = {c.spec.surrogate for c in cells if c.spec.surrogate is not None}
    surrogate_digests = {name: weights_digest(policy_of(name)) for name in surrogates}

    def stale(cell: Cell) -> bool:
        if cell.id not in done:
            return True
        weights, surrogate = done[cell.id]
        # A record from before surrogates were recorded is kept: what it crafted on is unknown.
        now = surrogate_digests.get(cell.spec.surrogate) if cell.spec.surrogate else None
        return weights != digests[cell.agent] or (surrogate is not None and surrogate != now)

    with store.lock():
        done = store.finished()  # reads every record: a damaged one refuses the run before it writes
        info = _run_info(store, grid, store.root / name, backend, device, extend, left_out, bool(done))
        atomic_write(store.root / name, lambda p: p.write_text(text))
        store.write_run_info(info)
        store.write_summary()
        pending = [c for c in cells if stale(c)]
        replayed = sum(c.id in done for c in pending)
        run = GridRun(store, cells, len(cells) - len(pending), 0, replayed, left_out)
        bar = tqdm(total=len(cells), initial=run.skipped, unit="cell", disable=not progress)

        def finished(record: dict[str, Any]) -> None:
            store.save(record)
            store.write_summary()
            run.computed += 1
            bar.update(1)
            bar.set_postfix_str(f"last cell's mean return {record['summary']['return_mean']:.1f}")

        try:
            if backend == "ray":
                run_on_ray(run_cell, pending, device, grid.threads, digests, ray_address, finished)
            else:
                for cell in pending:
                    finished(
                        run_cell(cell, device, grid.threads, digests[cell.agent], loaded.get(cell.agent))
                    )
        finally:
            bar.close()
            store.write_summary()
    return run


def _run_info(
    store: ResultStore,
    grid: GridConfig,
    config: Path,
    backend: str,
    device: str,
    extend: bool,
    left_out: list[str],
    has_results: bool,
) -> dict[str, Any]:
    """`run.json` with this invocation added (not written yet); a different grid is refused unless
    asked to extend, or unless the directory holds no results of the other one."""
    fresh = {"grid": grid.identity(), "created": now(), "runs": [], "earlier_grids": []}
    info = store.run_info() or fresh
    if info["grid"] != grid.identity():
        now_grid = grid.identity()
        changed = sorted(
            k for k in info["grid"].keys() | now_grid.keys() if info["grid"].get(k) != now_grid.get(k)
        )
        if has_results and not extend:
            raise UserInputError(
                f"{store.root} holds results of a different grid (changed: {', '.join(changed)}); "
                "use another --out, or --extend to add this grid's cells to it"
            )
        if has_results:
            info["earlier_grids"].append(info["grid"])
        info["grid"] = now_grid
    code = code_version()
    info["code"] = code
    info["runs"].append(
        {"started": now(), "backend": backend, "device": device, "config": str(config), "code": code}
        | {"left_out": left_out}
    )
    return info
