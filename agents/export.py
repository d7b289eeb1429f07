"""Turn a training run into a bundled zoo victim, its clean score measured by `rlattack eval`.

    python -m agents.export --run-dir runs/pong-dqn --name pong-dqn --episodes 10
    python -m agents.export --run-dir runs/pong-trpo --snapshot 5000000 --name pong-trpo

Copies the weights and the learning curve, writes `meta.json` from the run record (with the
weights' sha256, which loading checks), then runs `rlattack eval --agent NAME --attack none` on
whole games and stores that command's summary (and the command itself) as the victim's clean
score. An actor-critic victim (A3C, TRPO, A2C, PPO) is also played with `--act sample`, as it
played in training, for `clean_score_sampled`.
No score is written any other way. `--score-only` measures a bundled victim's scores again
without touching its weights. Either way `agents/zoo/curves.png` is drawn again.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rlattack.cli_options import CommandArgs, run_command
from rlattack.curves import write_curves
from rlattack.envs import make_vector_env
from rlattack.errors import UserInputError
from rlattack.files import write_json
from rlattack.sb3 import Q_VALUE_ALGORITHMS
from rlattack.weights import file_sha256
from rlattack.zoo import ZOO, victim, victims


class Args(CommandArgs):
    name: str
    """zoo name of the victim, e.g. pong-dqn"""
    run_dir: Path | None = None
    """training run folder with weights.safetensors and run.json (not with `--score-only`)"""
    snapshot: int | None = None
    """bundle the run's snapshot at this many steps (`snapshots/weights-STEPS.safetensors` and
    `snapshots/run-STEPS.json`, written by agents.trpo) instead of its last weights"""
    episodes: int = 10
    """whole games for the clean score"""
    envs: int = 5
    """envs the clean evaluation runs in parallel"""
    note: str = ""
    """shown by `rlattack zoo`, e.g. why a victim is weaker than its bar (`--score-only`: kept
    unless given)"""
    score_only: bool = False
    """keep the bundled weights and metadata (`--run-dir` is not read), measure the scores again"""


def bundle(run_dir: Path, target: Path, note: str = "", snapshot: int | None = None) -> dict[str, Any]:
    """Copy a run's weights and learning curve into the victim folder `target` and write its
    `meta.json` from the run record (no clean score yet); returns the metadata.

    With `snapshot`, the weights and record are those saved at that step and the curve is cut
    there, so the victim's history stops where its weights do."""
    weights, record_path = run_dir / "weights.safetensors", run_dir / "run.json"
    if snapshot is not None:
        weights = run_dir / "snapshots" / f"weights-{snapshot}.safetensors"
        record_path = run_dir / "snapshots" / f"run-{snapshot}.json"
        for path in (weights, record_path):
            if not path.exists():
                saved = sorted(int(p.stem.split("-")[1]) for p in run_dir.glob("snapshots/run-*.json"))
                raise UserInputError(f"no {path}; the run has snapshots with records at {saved or 'no step'}")
    record = json.loads(record_path.read_text())
    env = make_vector_env(record["game"], 1)
    n_actions = int(env.single_action_space.n)
    env.close()
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, target / "weights.safetensors")
    if snapshot is None:
        shutil.copyfile(run_dir / "curve.csv", target / "curve.csv")  # score of every training game
    else:  # the games played up to the snapshot's step
        with (run_dir / "curve.csv").open(newline="") as f:
            rows = list(csv.reader(f))
        with (target / "curve.csv").open("w", newline="") as f:
            csv.writer(f).writerows([rows[0], *(row for row in rows[1:] if int(row[0]) <= snapshot)])
    meta = {
        "game": record["game"],
        "algorithm": record["algorithm"],
        "network": record["network"],
        "network_kwargs": record.get("network_kwargs", {}),
        "n_actions": n_actions,
        "seed": record["seed"],
        "frames": record["frames"],
        "timesteps": record["timesteps"],
        "wall_seconds": record["wall_seconds"],
        "hardware": record["hardware"],
        "command": record["command"],
        "resumed_with": record.get("resumed_with", []),
        "args": record.get("args", {}),
        "note": note,
    } | {k: record[k] for k in ("recipe", "init_from", "averaged") if k in record}
    meta["weights_sha256"] = file_sha256(target / "weights.safetensors")  # `load_victim` checks it
    write_json(target / "meta.json", meta)
    return meta


def clean_score(name: str, episodes: int, envs: int, act: str) -> dict[str, Any]:
    """Run `rlattack eval --attack none` on the victim; its summary and the command itself."""
    command = ["rlattack", "eval", "--agent", name, "--attack", "none", "--episodes", str(episodes)]
    command += ["--envs", str(envs), "--seed", "0", "--device", "cpu"]
    if act != "greedy":
        command += ["--act", act]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clean.json"
        # This interpreter's rlattack, whether or not its venv is on PATH.
        argv = [sys.executable, "-m", *command, "--json", str(out), "--no-progress"]
        subprocess.run(argv, check=True, stdout=sys.stderr)
        summary = json.loads(out.read_text())["summary"]
    return {
        "return_mean": summary["return_mean"],
        "return_std": summary["return_std"],
        "episodes": summary["episodes"],
        "command": " ".join(command),
    }


def main(args: Args) -> None:
    target = ZOO / args.name
    if args.score_only:
        if args.run_dir is not None or args.snapshot is not None:
            raise UserInputError("--score-only keeps the bundled weights: leave out --run-dir and --snapshot")
        meta = dict(victim(args.name).meta)  # an unknown name is refused with the known ones
        meta["note"] = args.note or meta.get("note", "")
    elif args.run_dir is None:
        raise UserInputError("--run-dir is needed to bundle a run (or --score-only to re-measure a victim)")
    else:
        meta = bundle(args.run_dir, target, args.note, args.snapshot)
    meta["clean_score"] = clean_score(args.name, args.episodes, args.envs, "greedy")
    if meta["algorithm"] not in Q_VALUE_ALGORITHMS:
        meta["clean_score_sampled"] = clean_score(args.name, args.episodes, args.envs, "sample")
    write_json(target / "meta.json", meta)
    print(json.dumps({k: meta.get(k) for k in ("clean_score", "clean_score_sampled")}))
    print(f"wrote {write_curves(victims(), ZOO / 'curves.png')}")  # docs/training.md's figure, kept current


if __name__ == "__main__":
    run_command(main, Args)
