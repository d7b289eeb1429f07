"""What interval bounds cost: certifying a batch against forward passes of the same network.

Times, on one batch of observations of the victim's own clean play, (a) `rlattack.certify.certified`
(the greedy action's forward pass, then the margin bounds) and (b) one forward pass of the policy,
the median of `repeats` runs each, in one run on the same device and threads. The last line is
`ratio N` = (a) / (b), the cost of a certificate in forward passes (the target: at most 3).

    python benchmarks/certify_cost.py --batch 256
"""

from __future__ import annotations

import statistics
import time

import torch

from rlattack.blackbox.oracle import Oracle
from rlattack.certify import certified
from rlattack.cli_options import CommandArgs, run_command
from rlattack.loading import load_policy
from rlattack.policies import resolve_device
from rlattack.rollout.watch import watch


class Args(CommandArgs):
    agent: str = "pong-dqn"
    """victim: a zoo name, sb3:PATH.zip or torch:PATH"""
    game: str = "pong"
    batch: int = 256
    """observations certified at once"""
    eps: float = 1 / 255
    """L-inf budget on the [0, 1] scale"""
    repeats: int = 20
    device: str = "cpu"
    threads: int = 1


def timed(work, repeats: int, device: str) -> float:
    """The median wall time of `work()` over `repeats` runs after one warm-up."""
    work()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        work()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    policy = load_policy(args.agent, device)
    data = watch(Oracle(policy), args.game, args.batch, envs=8, seed=0, progress=False, every=4)
    x = torch.as_tensor(data.obs, device=device).float() / 255.0
    with torch.no_grad():
        forward = timed(lambda: policy(x), args.repeats, device)
    certify = timed(lambda: certified(policy, x, args.eps, batch_size=args.batch), args.repeats, device)
    print(
        f"{args.agent}, batch {args.batch}, eps {args.eps:.5f}, {device}, {torch.get_num_threads()} thread(s)"
    )
    print(f"(a) certify: {1000 * certify:.1f} ms   (b) forward pass: {1000 * forward:.1f} ms")
    print(f"ratio {certify / forward:.2f}")


if __name__ == "__main__":
    run_command(main, Args)
