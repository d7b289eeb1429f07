"""PGD-10's cost against its floor: one attack call and 11 forward-and-backward passes, in one run.

PGD-10 needs ten gradient steps and one forward pass for the adversarial action, so 11 passes of
`loss_gradient` (forward and input gradient) at the same batch are its floor. What it costs
beyond that is its own: the random start, the projection, the clean pass for the label.
The last line is `ratio N` = attack / floor (the goal: at most 1.3).

    python benchmarks/pgd_cost.py --batch 16 --threads 1
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch

from rlattack.attacks import PGD
from rlattack.attacks.base import loss_gradient
from rlattack.cli_options import CommandArgs, run_command
from rlattack.grid.run import torch_threads
from rlattack.loading import load_policy
from rlattack.policies import Policy


class Args(CommandArgs):
    agent: str = "pong-dqn"
    """victim: a zoo name, sb3:PATH.zip or torch:PATH"""
    batch: int = 16
    """observations attacked together (K envs of the runner)"""
    eps: float = 1 / 255
    reps: int = 20
    """calls timed of each, after one warm-up call"""
    device: str = "cpu"
    threads: int = 1
    """torch intra-op threads"""


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pgd_against_passes(policy: Policy, k: int, eps: float, reps: int = 3) -> tuple[float, float]:
    """Seconds of one PGD-10 call and of 11 forward-and-backward passes, both at batch `k`."""
    x = torch.rand(k, *policy.obs_shape, device=policy.device)
    label = torch.zeros(k, dtype=torch.long, device=policy.device)
    attack = PGD(eps, steps=10)

    def timed(work: Callable[[], object]) -> float:
        work()
        sync(policy.device)
        start = time.perf_counter()
        for _ in range(reps):
            work()
        sync(policy.device)
        return (time.perf_counter() - start) / reps

    pgd = timed(lambda: attack(policy, x))
    passes = timed(lambda: [loss_gradient(policy, x, label, False, "ce") for _ in range(11)])
    return pgd, passes


def main(args: Args) -> None:
    with torch_threads(args.threads):
        policy = load_policy(args.agent, args.device)
        where = f"{args.device}, {args.threads} torch thread(s), {os.cpu_count()} CPU cores"
        print(f"{args.agent}, batch {args.batch}, {where}")
        pgd, floor = pgd_against_passes(policy, args.batch, args.eps, args.reps)
        print(f"PGD-10 call: {pgd * 1e3:.2f} ms")
        print(f"11 forward-and-backward passes: {floor * 1e3:.2f} ms")
        print(f"ratio {pgd / floor:.2f}")


if __name__ == "__main__":
    run_command(main, Args)
