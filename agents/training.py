"""What every recipe shares: the run record, the learning curve, resuming and checkpoints.

A run directory holds a checkpoint to resume from (`checkpoint.zip`: full SB3 state; the A3C
recipe writes its own), `weights.safetensors` (the network's weights only, what the zoo ships),
`curve.csv` (one row per finished game: the true score) and `run.json` (the arguments, the
command, hardware and wall time so far).
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shlex
import shutil
import signal
import sys
import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn
from tqdm import tqdm

from agents.envs import Sb3VecEnv
from rlattack.cli_options import CommandArgs
from rlattack.files import atomic_write, write_json
from rlattack.observations import FRAME_SKIP
from rlattack.weights import load_weights, save_weights

CURVE_HEADER = ["timesteps", "frames", "score", "length"]


class RunArgs(CommandArgs):
    """What every recipe's command takes besides its hyperparameters."""

    game: str = "pong"
    """ALE game, e.g. pong, seaquest, space_invaders, chopper_command"""
    seed: int = 1
    """seed of the envs, the network's initialisation and exploration"""
    run_dir: Path = Path("runs/pong")
    """where checkpoints, weights, the learning curve and the run record go"""
    total_timesteps: int = 10_000_000
    """agent steps, summed over envs (each is 4 emulator frames on Atari)"""
    checkpoint_every: int = 100_000
    """agent steps between checkpoints"""
    threads: int = 1
    """torch CPU threads per process (leave a core for the emulator on small machines)"""
    life_loss: bool = False
    """end the learner's episode at each lost life (Mnih et al. 2015); scores stay whole games"""
    init_from: Path | None = None
    """zoo victim folder to continue when RUN_DIR has no checkpoint: its weights, steps and record
    (optimizer statistics and any replay buffer start afresh)"""


def hardware() -> str:
    """A short description of where a run ran, for the victim's metadata."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {gpu}"


class RunLog:
    """`curve.csv` and the progress fields of `run.json`, kept consistent with the checkpoint.

    Curve rows past `resumed_at` were played after the checkpoint the run continues from; they
    are dropped so the curve describes the run that exists. Wall time adds up across resumes.
    A progress bar shows the steps towards `total` and the mean score of the last games; written
    to a log file rather than a terminal, it updates once a minute.
    """

    def __init__(
        self, run_dir: Path, record: dict[str, Any], frames_per_step: int, resumed_at: int, total: int
    ) -> None:
        self.bar = tqdm(
            total=total,
            initial=resumed_at,
            desc=run_dir.name,
            unit="step",
            unit_scale=True,
            mininterval=1 if sys.stderr.isatty() else 60,
            maxinterval=60,
        )
        self.recent: deque[float] = deque(maxlen=20)
        self.run_dir = run_dir
        self.record = record
        self.frames_per_step = frames_per_step
        self.started = time.time()
        self.wall_before = float(record.get("wall_seconds", 0.0))
        self.curve_path = run_dir / "curve.csv"
        kept: list[list[str]] = []
        if self.curve_path.exists():
            with self.curve_path.open(newline="") as f:
                kept = [row for row in list(csv.reader(f))[1:] if int(row[0]) <= resumed_at]
        atomic_write(self.curve_path, lambda p: _write_rows(p, [CURVE_HEADER, *kept]))

    def add_games(self, games: Iterable[tuple[int, float, int]]) -> None:
        """Append finished games as (timesteps, true score, length in agent steps)."""
        rows = [(t, t * self.frames_per_step, score, length) for t, score, length in games]
        if rows:
            with self.curve_path.open("a", newline="") as f:
                csv.writer(f).writerows(rows)
            self.recent.extend(score for _, _, score, _ in rows)
            self.bar.set_postfix(score=f"{sum(self.recent) / len(self.recent):.1f}", refresh=False)

    def advance(self, timesteps: int) -> None:
        """Move the progress bar to `timesteps`."""
        self.bar.update(timesteps - self.bar.n)

    def close(self) -> None:
        self.bar.close()

    def save(self, timesteps: int) -> None:
        self.record.update(
            timesteps=timesteps,
            frames=timesteps * self.frames_per_step,
            wall_seconds=round(self.wall_before + time.time() - self.started, 1),
            hardware=hardware(),
        )
        write_json(self.run_dir / "run.json", self.record)


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


class CtrlC:
    """Ctrl-C as a request to stop: the run stops at its next step and saves. Raising
    KeyboardInterrupt wherever the signal lands could cut a queue read or a file write in half and
    fail the save. A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.pressed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.pressed = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self) -> CtrlC:
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGINT, self.previous)


class Checkpoint(BaseCallback):
    """Every `every` env steps: save a resumable SB3 checkpoint, the weights and the run record."""

    def __init__(self, run_dir: Path, every: int, record: dict[str, Any], ctrl_c: CtrlC) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.every = every
        self.record = record
        self.ctrl_c = ctrl_c

    def _on_training_start(self) -> None:
        total = self.locals["total_timesteps"]  # SB3's target, counted from step 0
        self.log = RunLog(self.run_dir, self.record, FRAME_SKIP, resumed_at=self.num_timesteps, total=total)
        self.last_saved = self.num_timesteps

    def _on_step(self) -> bool:
        self.log.add_games(
            (self.num_timesteps, info["episode"]["r"], info["episode"]["l"])
            for info in self.locals["infos"]
            if "episode" in info
        )
        self.log.advance(self.num_timesteps)
        if self.num_timesteps - self.last_saved >= self.every:
            self.save()
        return not self.ctrl_c.pressed  # SB3 then ends training, which saves

    def _on_training_end(self) -> None:
        self.save()
        self.log.close()

    def _save_model(self, path: Path) -> None:
        with path.open("wb") as f:  # a file object: SB3 would append ".zip" to a path
            self.model.save(f)

    def save(self) -> None:
        self.last_saved = self.num_timesteps
        atomic_write(self.run_dir / "checkpoint.zip", self._save_model)
        save_weights(self.model.policy, self.run_dir / "weights.safetensors")
        self.log.save(self.num_timesteps)


def continue_from_victim(network: nn.Module, victim: Path, run_dir: Path) -> int:
    """Load a zoo victim's weights into `network` and start the run record and learning curve from
    the victim's, so frames, wall time and the curve keep adding up across machines; returns its
    step count. A fine-tuned victim keeps its recipe and what it started from, so continuing it
    with the same recipe resumes that run (and its eps ramp) rather than starting a new one."""
    meta = json.loads((victim / "meta.json").read_text())
    load_weights(network, victim / "weights.safetensors")
    shutil.copyfile(victim / "curve.csv", run_dir / "curve.csv")
    keys = ("algorithm", "game", "seed", "command", "network", "timesteps", "frames", "wall_seconds")
    record = {k: meta[k] for k in (*keys, "hardware", "recipe", "init_from") if k in meta}
    record |= {
        "resumed_with": meta.get("resumed_with", []),
        "args": meta.get("args", {}),
        "network_kwargs": meta.get("network_kwargs", {}),
    }
    write_json(run_dir / "run.json", record)
    return int(meta["timesteps"])


def start_or_resume(
    algorithm: type[BaseAlgorithm], args: Any, n_envs: int, **hyperparameters: Any
) -> BaseAlgorithm:
    """The run's SB3 model on `n_envs` training envs: resumed from `RUN_DIR/checkpoint.zip` where
    there is one, else a new `CnnPolicy` model, started from the `--init-from` victim if given."""
    torch.set_num_threads(args.threads)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    env = Sb3VecEnv(args.game, num_envs=n_envs, seed=args.seed, life_loss=args.life_loss)
    checkpoint = args.run_dir / "checkpoint.zip"
    if checkpoint.exists():
        return algorithm.load(checkpoint, env=env, device=args.device)
    model = algorithm("CnnPolicy", env, seed=args.seed, device=args.device, verbose=0, **hyperparameters)
    if args.init_from is not None:
        model.num_timesteps = continue_from_victim(model.policy, args.init_from, args.run_dir)
    return model


def learn(
    model: BaseAlgorithm, args: Any, record: dict[str, Any], callbacks: Sequence[BaseCallback] = ()
) -> None:
    """Train up to `args.total_timesteps`, checkpointing every `args.checkpoint_every` steps and
    when Ctrl-C stops the run, so a run given a time budget (`timeout -s INT`) loses nothing.
    `callbacks` join the training (a recipe's additions to its algorithm)."""
    remaining = args.total_timesteps - model.num_timesteps
    if remaining <= 0:
        return
    with CtrlC() as ctrl_c:
        checkpoint = Checkpoint(args.run_dir, args.checkpoint_every, record, ctrl_c)
        model.learn(
            remaining, callback=[checkpoint, *callbacks], reset_num_timesteps=False, progress_bar=False
        )


def run_record(
    run_dir: Path,
    args: Any,
    algorithm: str,
    network: str = "nature-cnn",
    network_kwargs: dict[str, Any] | None = None,
    recipe: str | None = None,
) -> dict[str, Any]:
    """The run's record: continued from `run.json` when resuming, else started from the arguments.

    The command is `python -m agents.RECIPE`, the recipe by default named after its algorithm.
    A recipe that fine-tunes a victim of another recipe (`--init-from`, say SA-DQN from a DQN)
    starts a record of its own that says what it started from (`init_from`: the victim, its
    command, steps and frames), so the frames trained after it can be told apart.
    `network_kwargs` are the keywords that shaped an SB3 network, which the zoo needs to rebuild it.
    """
    path = run_dir / "run.json"
    recipe = recipe or algorithm
    command = shlex.join(["python", "-m", f"agents.{recipe}", *sys.argv[1:]])
    fresh = {
        "algorithm": algorithm,
        "game": args.game,
        "seed": args.seed,
        "command": command,
        "args": {k: str(v) for k, v in args.model_dump().items()},
        "network": network,
        "network_kwargs": network_kwargs or {},
    } | ({"recipe": recipe} if recipe != algorithm else {})
    if not path.exists():
        return fresh
    record = json.loads(path.read_text())
    if record.get("recipe", record["algorithm"]) == recipe:
        record.setdefault("resumed_with", []).append(command)
        return record
    started = {k: record[k] for k in ("command", "timesteps", "frames", "wall_seconds") if k in record}
    return fresh | {"init_from": {"victim": str(args.init_from), **started}}


ADAM_MOMENTS = ("step", "exp_avg", "exp_avg_sq")


def adam_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """An Adam optimizer's per-parameter statistics as flat named tensors (`PREFIX.I.MOMENT`), so a
    checkpoint holds them in safetensors, with nothing pickled."""
    state: dict[str, torch.Tensor] = {}
    for i, moments in optimizer.state_dict()["state"].items():
        state |= {f"{prefix}.{i}.{k}": torch.as_tensor(v).contiguous() for k, v in moments.items()}
    return state


def load_adam_tensors(optimizer: torch.optim.Optimizer, state: dict[str, torch.Tensor], prefix: str) -> None:
    """Restore what `adam_tensors` wrote; parameters without statistics (never stepped) keep none."""
    saved = optimizer.state_dict()
    for i in range(sum(len(group["params"]) for group in saved["param_groups"])):
        if f"{prefix}.{i}.step" in state:
            saved["state"][i] = {k: state[f"{prefix}.{i}.{k}"] for k in ADAM_MOMENTS}
    optimizer.load_state_dict(saved)
