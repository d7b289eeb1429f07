"""What every Stable-Baselines3 recipe shares: resuming, checkpoints, the learning curve.

A run directory holds `checkpoint.zip` (full SB3 state, for resuming), `weights.safetensors`
(the policy's weights only, what the zoo ships), `curve.csv` (one row per finished game: the
true score) and `run.json` (the arguments, the command, hardware and wall time so far).
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback

from rlattack.files import atomic_write, write_json


def hardware() -> str:
    """A short description of where a run ran, for the victim's metadata."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {gpu}"


def export_weights(model: BaseAlgorithm, path: Path) -> None:
    """Save the policy's state dict as safetensors: loading it runs no pickled code."""
    state = {
        k: v.detach().cpu().contiguous()
        for k, v in model.policy.state_dict().items()
        if not k.startswith("q_net_target.")  # a copy of q_net, needed only for training
    }
    atomic_write(path, lambda p: save_file(state, str(p)))


class Checkpoint(BaseCallback):
    """Every `every` env steps: save a resumable checkpoint, the weights and the run record."""

    def __init__(self, run_dir: Path, every: int, record: dict[str, Any]) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.every = every
        self.record = record
        self.started = time.time()
        self.wall_before = float(record.get("wall_seconds", 0.0))
        self.last_saved = 0
        self.curve_path = run_dir / "curve.csv"
        if not self.curve_path.exists():
            self.curve_path.write_text("timesteps,frames,score,length\n")

    def _on_step(self) -> bool:
        rows = [
            (self.num_timesteps, self.num_timesteps * 4, info["episode"]["r"], info["episode"]["l"])
            for info in self.locals["infos"]
            if "episode" in info
        ]
        if rows:
            with self.curve_path.open("a", newline="") as f:
                csv.writer(f).writerows(rows)
        if self.num_timesteps - self.last_saved >= self.every:
            self.save()
        return True

    def _on_training_end(self) -> None:
        self.save()

    def _save_model(self, path: Path) -> None:
        with path.open("wb") as f:  # a file object: SB3 would append ".zip" to a path
            self.model.save(f)

    def save(self) -> None:
        self.last_saved = self.num_timesteps
        atomic_write(self.run_dir / "checkpoint.zip", self._save_model)
        export_weights(self.model, self.run_dir / "weights.safetensors")
        self.record.update(
            timesteps=self.num_timesteps,
            frames=self.num_timesteps * 4,
            wall_seconds=round(self.wall_before + time.time() - self.started, 1),
            hardware=hardware(),
        )
        write_json(self.run_dir / "run.json", self.record)


def continue_from_victim(model: BaseAlgorithm, victim: Path, run_dir: Path) -> None:
    """Start `model` from a zoo victim's weights and step count, and its run record from the
    victim's metadata, so frames and wall time keep adding up across machines."""
    meta = json.loads((victim / "meta.json").read_text())
    missing, unexpected = model.policy.load_state_dict(
        load_file(str(victim / "weights.safetensors")), strict=False
    )
    if unexpected or any(not k.startswith("q_net_target.") for k in missing):
        raise ValueError(f"{victim} does not fit this network: {missing + unexpected}")
    if hasattr(model.policy, "q_net_target"):
        model.policy.q_net_target.load_state_dict(model.policy.q_net.state_dict())
    model.num_timesteps = int(meta["timesteps"])
    model.learning_starts += model.num_timesteps  # the replay buffer starts empty
    keys = (
        "algorithm",
        "game",
        "seed",
        "command",
        "network",
        "timesteps",
        "frames",
        "wall_seconds",
        "hardware",
    )
    record = {k: meta[k] for k in keys} | {"resumed_with": meta.get("resumed_with", [])}
    record["args"] = meta.get("args", {})
    write_json(run_dir / "run.json", record)


def run_record(run_dir: Path, args: Any, algorithm: str) -> dict[str, Any]:
    """The run's record: continued from `run.json` when resuming, else started from the arguments."""
    path = run_dir / "run.json"
    command = shlex.join(["python", "-m", f"agents.{algorithm}", *sys.argv[1:]])
    if path.exists():
        record = json.loads(path.read_text())
        record.setdefault("resumed_with", []).append(command)
        return record
    return {
        "algorithm": algorithm,
        "game": args.game,
        "seed": args.seed,
        "command": command,
        "args": {k: str(v) for k, v in asdict(args).items()},
        "network": "nature-cnn",
    }
