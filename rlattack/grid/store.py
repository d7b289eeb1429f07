"""The results directory of a grid: one record per finished cell, a summary table, provenance.

Layout of `DIR`:

    config.yaml|.toml    the grid config as the user wrote it (last run)
    run.json             the validated grid, the code version, and one entry per invocation
    cells/<id>.json      one record per finished cell, written atomically (temp file + rename)
    cells/superseded/    records replaced because their agent or surrogate now holds other weights
    summary.csv          one row per record, rebuilt from `cells/` after every finished cell
    summary.parquet      the same table, typed
    transfer/*.json      transfer results (`TransferRecord`), one file per source/target pair
                         (written by `rlattack transfer`, which may use a directory of its own)
    transfer/superseded/ pairs replaced because their source or target now holds other weights

A record only appears once its cell has finished, so an interrupted run loses at most the cells
in flight; the next run skips every id in `cells/` whose record was measured on the weights its
agent (and its surrogate, if any) holds now. One process at a time may write to `DIR` (an
advisory lock), so two runs of the same grid cannot compute a cell twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rlattack.errors import UserInputError, explain
from rlattack.files import atomic_write, check_writable, write_json
from rlattack.grid.config import Cell
from rlattack.schedules import parse_schedule

CELL_COLUMNS = (
    "game",
    "agent",
    "attack",
    "options",
    "norm",
    "eps",
    "schedule",
    "seed",
    "surface",
    "quantize",
    "envs",
)


class CellSummary(BaseModel):
    """A cell's summary, the fields of `rlattack eval --json`; fields added later pass through."""

    model_config = ConfigDict(extra="allow")

    return_mean: float
    return_std: float
    episodes: int
    steps: int
    attacked_steps: int
    attacked_fraction: float | None = None
    action_change_rate: float
    source_success_rate: float | None = None
    target_rate: float | None = None
    linf_mean: float
    l2_mean: float
    l0_mean: float
    steps_per_s: float
    attacked_steps_per_s: float | None = None
    wall_s: float | None = None


class GameRecord(BaseModel):
    """One game of a cell (`rlattack.rollout.evaluate.Episode`); fields added later pass through."""

    model_config = ConfigDict(extra="allow")

    env: int
    score: float
    length: int
    attacked_steps: int = 0
    action_changes: int = 0


class CellRecord(BaseModel):
    """What `cells/<id>.json` holds: the cell, its summary and games, and where it was measured.

    `run_cell` checks each record against this model before it is stored, and the store reads every
    record back through it: a file that is JSON but not a record is refused by name, instead of
    failing later in a table or a plot that cannot say which file it was.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    cell: Cell
    summary: CellSummary
    episodes: list[GameRecord] = Field(min_length=1)
    weights: str | None = None
    """`weights_digest` of the agent it was measured with"""
    surrogate_weights: str | None = None
    """`weights_digest` of the surrogate a transfer or ensemble cell crafted on (None: the cell
    has none, or its record predates this field)"""
    device: str | None = None
    threads: int | None = None
    code: dict[str, Any] = {}
    finished_at: str | None = None

    @model_validator(mode="after")
    def _a_cell_of_a_grid(self) -> CellRecord:
        if self.id != self.cell.id:
            raise ValueError(f"its id {self.id} is not its cell's ({self.cell.id})")
        self.cell.spec  # noqa: B018 (parses the attack, its norm and options, or raises)
        parse_schedule(self.cell.schedule)
        return self


class RunInfo(BaseModel):
    """What `run.json` holds: the grid, when it was created, one entry per invocation."""

    model_config = ConfigDict(extra="allow")

    grid: dict[str, Any]
    created: str
    runs: list[dict[str, Any]]
    earlier_grids: list[dict[str, Any]] = []
    code: dict[str, Any] | None = None


class TransferRecord(BaseModel):
    """Adversarial examples crafted on `source` and shown to `target` (black-box transfer).

    The report draws one heatmap per (game, attack, norm, eps, target rule): rows are sources,
    columns targets, cells `return_mean` of the target. A source equal to its target is the
    white-box entry of the matrix.
    """

    model_config = ConfigDict(extra="forbid")

    game: str
    attack: str
    norm: str
    eps: float
    source: str
    target: str
    return_mean: float
    return_std: float = 0.0
    episodes: int
    action_change_rate: float | None = None
    """the transfer rate: attacked steps on which the target's action changed"""
    target_rule: str | None = None
    """the adversary's action rule of a targeted attack (policy induction)"""
    target_rate: float | None = None
    """attacked steps on which the target took the adversary's action"""
    source_success_rate: float | None = None
    """the attack's white-box success on the source, on the same steps"""
    clean_return: float | None = None
    """the target's mean return without attack, same games"""
    linf_mean: float | None = None
    setting: dict[str, Any] = {}
    """everything else the result depends on: schedule, surface, attack options, games, seed, and
    `act` where the target sampled its actions"""
    weights: dict[str, str] = {}
    """`weights_digest` of the source and the target it was measured with"""

    @property
    def key(self) -> str:
        return transfer_key(self.model_dump(include=set(TRANSFER_IDENTITY)))

    @property
    def act(self) -> str:
        """How the target chose its actions: greedy (the default) or sample."""
        return self.setting.get("act", "greedy")


TRANSFER_IDENTITY = ("game", "attack", "norm", "eps", "source", "target", "target_rule", "setting")


def transfer_key(identity: dict[str, Any]) -> str:
    """The file name (without .json) of a transfer record, known before it is computed.

    Readable where it can be; a hash of every identifying field keeps two settings, or two
    agents whose names differ only in punctuation, from sharing a file.
    """
    missing = set(TRANSFER_IDENTITY) - identity.keys()
    if missing:
        raise ValueError(f"a transfer key needs {sorted(missing)}")
    text = json.dumps({k: identity[k] for k in TRANSFER_IDENTITY}, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    rule = f"_to-{identity['target_rule']}" if identity["target_rule"] else ""
    return safe_name(
        f"{identity['game']}_{identity['attack']}_L{identity['norm']}_eps{identity['eps']:g}{rule}_{digest}"
    )


class ResultStore:
    """Reads and writes one results directory; see the module docstring for its layout."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.cells = self.root / "cells"
        self.transfer = self.root / "transfer"
        self.run_file = self.root / "run.json"

    def check_root(self) -> None:
        """Refuse a root that cannot be a folder (a file, or under one) before any work."""
        check_writable(self.root, "--out", folder=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the directory for one writer; the OS drops the lock if the process dies. Callers
        `check_root` first, before their other checks, so that a bad root costs no work."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            held = FileLock(self.root / ".lock", timeout=0)
            held.acquire()
        except Timeout:
            raise UserInputError(f"another `rlattack run` is writing to {self.root}") from None
        try:
            # Leftovers of a process killed mid-write: never records, safe to drop under the lock.
            for stale in self.root.glob("**/.*.tmp*"):
                stale.unlink()
            yield
        finally:
            held.release()

    def finished(self) -> dict[str, tuple[str | None, str | None]]:
        """Finished cell ids, each with the `weights_digest` of its agent and of its surrogate it
        was measured with (None: unrecorded, or no surrogate)."""
        return {r["id"]: (r.get("weights"), r.get("surrogate_weights")) for r in self.records()}

    def save(self, record: dict[str, Any]) -> None:
        """Store a finished cell; a record it replaces (measured on weights the agent or its
        surrogate no longer holds) moves to `cells/superseded/ID-DIGEST.json`, so nothing finished is lost."""
        path = self.cells / f"{record['id']}.json"
        if path.is_file():
            _supersede(path, _read_record(path).get("weights") or "unknown")
        write_json(path, record)

    def records(self) -> list[dict[str, Any]]:
        """Every finished cell's record, each validated as a `CellRecord`, as it was written."""
        return [_read_record(path) for path in _json_files(self.cells)]

    def transfer_records(self) -> list[TransferRecord]:
        return [_read_transfer(path) for path in _json_files(self.transfer)]

    def save_transfer(self, record: TransferRecord) -> Path:
        """Store a finished pair; a record it replaces (measured on other weights of the source or
        the target) moves to `transfer/superseded/KEY-SOURCE-TARGET.json`, named by those digests."""
        path = self.transfer / f"{record.key}.json"
        if path.is_file():
            old = _read_transfer(path).weights
            _supersede(path, f"{old.get('source', 'unknown')}-{old.get('target', 'unknown')}")
        write_json(path, record.model_dump())
        return path

    def transfer_record(self, key: str) -> TransferRecord | None:
        path = self.transfer / f"{key}.json"
        return _read_transfer(path) if path.is_file() else None

    def table(self) -> pd.DataFrame:
        """One row per finished cell: its parameters, its summary, where and with what code it ran."""
        rows = []
        for r in self.records():
            cell = {k: r["cell"][k] for k in CELL_COLUMNS} | {"act": r["cell"].get("act", "greedy")}
            cell["options"] = json.dumps(cell["options"], sort_keys=True)
            code = r.get("code", {})
            rows.append(
                {
                    "id": r["id"],
                    **cell,
                    **r["summary"],
                    "weights": r.get("weights"),
                    "device": r.get("device"),
                    "commit": code.get("commit"),
                    "finished_at": r.get("finished_at"),
                }
            )
        table = pd.DataFrame(rows)
        if rows:
            table = table.sort_values(["game", "agent", "attack", "norm", "eps", "schedule", "seed"])
        return table.reset_index(drop=True)

    def write_summary(self) -> pd.DataFrame:
        """Rebuild `summary.csv` and `summary.parquet` from the records."""
        table = self.table()
        atomic_write(self.root / "summary.csv", lambda p: table.to_csv(p, index=False))
        atomic_write(self.root / "summary.parquet", lambda p: table.to_parquet(p, index=False))
        return table

    def run_info(self) -> dict[str, Any] | None:
        """`run.json`, validated as a `RunInfo`; None before the first run."""
        if not self.run_file.is_file():
            return None
        advice = "repair it, or delete it to start its history anew"
        info = _read_json(self.run_file, "bad run file", advice)
        _validate(RunInfo, info, "bad run file", self.run_file, advice)
        return info

    def write_run_info(self, info: dict[str, Any]) -> None:
        write_json(self.run_file, info)


def _supersede(path: Path, tag: str) -> None:
    """Move a record that is about to be replaced to `superseded/STEM-TAG.json` beside it, or to
    `STEM-TAG-2.json`, ... where weights came back to ones measured before."""
    folder = path.parent / "superseded"
    folder.mkdir(exist_ok=True)
    kept, n = folder / f"{path.stem}-{tag}.json", 1
    while kept.exists():
        n += 1
        kept = folder / f"{path.stem}-{tag}-{n}.json"
    path.rename(kept)


def _json_files(folder: Path) -> list[Path]:
    """Finished files; a name starting with a dot is a file still being written."""
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


Model = TypeVar("Model", bound=BaseModel)

RECOMPUTE = "delete it to recompute it"
"""The advice on a damaged record: a cell or pair whose record is gone is computed again."""


def _read_json(path: Path, what: str = "unreadable result file", advice: str = RECOMPUTE) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise UserInputError(f"{what} {path} ({e}); {advice}") from None


def _validate(model: type[Model], raw: Any, what: str, path: Path, advice: str = RECOMPUTE) -> Model:
    """`raw` as `model` (strictly: a number written as text is damage, not a number); any problem
    is one line naming the file."""
    try:
        return model.model_validate(raw, strict=True)
    except ValidationError as e:
        problem = explain(e) if isinstance(raw, dict) else f"not a JSON object but {type(raw).__name__}"
        raise UserInputError(f"{what} {path}: {problem}; {advice}") from None


def _read_record(path: Path) -> dict[str, Any]:
    """A cell's record as written, once it has proved to be one, filed under its own id."""
    record = _read_json(path)
    if _validate(CellRecord, record, "bad result file", path).id != path.stem:
        raise UserInputError(f"bad result file {path}: it holds cell {record['id']}; {RECOMPUTE}")
    return record


def _read_transfer(path: Path) -> TransferRecord:
    return _validate(TransferRecord, _read_json(path), "bad transfer record", path)


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "-" for c in name)
