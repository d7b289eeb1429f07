"""A policy from two checkpoints of one training run: the weighted mean of their weights
(Izmailov et al. 2018), written as a run folder that `agents.export` bundles.

    python -m agents.average --first agents/zoo/pong-distill/training/round-07.safetensors \
        --second agents/zoo/pong-distill/training/round-09.safetensors --share 0.8 \
        --training agents/zoo/pong-distill/training --run-dir runs/pong-distill-average

Why: students of consecutive rounds of `agents.distill` lie in one basin, and a greedy Pong player
replays one cycle per start, which a small change of the weights can turn from a 0-21 loss into a
win. Their mean keeps what both were trained for (the same labels, the same bounds), with no
further training; its clean play and its robustness are measured like any victim's.

The run record is the training run's (`--training`: its run.json and curve.csv; its command
stays the training's), with `averaged`: this command and the two checkpoints (path, share,
sha256), which `agents.export` carries into the victim's meta.json.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

from pydantic import field_validator
from safetensors import safe_open
from safetensors.torch import load_file

from rlattack.cli_options import CommandArgs, run_command
from rlattack.errors import UserInputError
from rlattack.files import write_json
from rlattack.safetensors_agent import save_safetensors_agent
from rlattack.weights import file_sha256


class Args(CommandArgs):
    first: Path
    """a checkpoint, as a safetensors agent (`save_safetensors_agent`)"""
    second: Path
    """another checkpoint of the same network"""
    share: float = 0.8
    """the first checkpoint's weight in the mean; the second gets 1 - share"""
    training: Path
    """the training run's folder (run.json, curve.csv), whose record the mean continues"""
    run_dir: Path = Path("runs/pong-distill-average")

    @field_validator("share")
    @classmethod
    def _a_share(cls, value: float) -> float:
        if not 0 < value < 1:
            raise ValueError(f"the share must lie strictly between 0 and 1, got {value}")
        return value


def header(path: Path) -> dict[str, str]:
    """A safetensors agent's metadata (its architecture); a clear error for another file."""
    if not path.is_file():
        raise UserInputError(f"{path}: no such file")
    with safe_open(str(path), "pt") as f:
        found = f.metadata() or {}
    if not {"algorithm", "network", "n_actions"} <= found.keys():
        raise UserInputError(f"{path} is not a safetensors agent (no architecture in its header)")
    return found


def main(args: Args) -> None:
    first, second = header(args.first), header(args.second)
    if first != second:
        raise UserInputError(f"{args.first} and {args.second} are different networks: {first} and {second}")
    a, b = load_file(str(args.first)), load_file(str(args.second))
    if {k: v.shape for k, v in a.items()} != {k: v.shape for k, v in b.items()}:
        raise UserInputError(f"{args.first} and {args.second} have different tensors")
    mean = {k: args.share * a[k] + (1 - args.share) * b[k] for k in a}
    args.run_dir.mkdir(parents=True, exist_ok=True)
    kwargs = json.loads(first.get("network_kwargs", "{}"))
    path = args.run_dir / "weights.safetensors"
    save_safetensors_agent(mean, path, first["algorithm"], int(first["n_actions"]), first["network"], kwargs)
    record = json.loads((args.training / "run.json").read_text())
    shutil.copyfile(args.training / "curve.csv", args.run_dir / "curve.csv")
    record["averaged"] = {
        "command": shlex.join(["python", "-m", "agents.average", *sys.argv[1:]]),
        "checkpoints": [
            {"path": str(p), "share": s, "sha256": file_sha256(p)}
            for p, s in ((args.first, args.share), (args.second, 1 - args.share))
        ],
    }
    write_json(args.run_dir / "run.json", record)
    print(f"wrote {path}: {args.share:g} x {args.first} + {1 - args.share:g} x {args.second}")


if __name__ == "__main__":
    run_command(main, Args)
