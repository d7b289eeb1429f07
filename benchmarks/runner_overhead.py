"""The batched runner's own cost: its steps/s with a policy that costs nothing, against the bare env.

(a) `rlattack.rollout.evaluate` with no attack and a policy whose forward pass returns zeros
    (always action 0) for [0, 1] input, K envs, one whole game per env;
(b) ale-py's vector env alone, stepped with action 0 for the same number of steps, K envs.

Both use the same vector env (`rlattack.envs.make_vector_env`) in one run. What (a) spends beyond
(b) is the runner's: observations to tensors, the attacker's bookkeeping, the per-game records.
The last line is `ratio N` = (a) / (b) (the goal: at least 0.9 at K = 256). `--scaled` also
times (a) with the zeros policy taking 0..255 input as SB3 networks do: `Policy` then multiplies
the batch by 255 each step, a cost of the network's input convention rather than of the runner.

    python benchmarks/runner_overhead.py --envs 256
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from torch import Tensor, nn

from rlattack.cli_options import CommandArgs, run_command
from rlattack.envs import make_vector_env
from rlattack.grid.run import torch_threads
from rlattack.policies import Policy
from rlattack.rollout.evaluate import evaluate


class Args(CommandArgs):
    game: str = "pong"
    envs: int = 256
    """K, envs stepped together; the runner plays one whole game on each"""
    threads: int = 1
    """torch intra-op threads"""
    seed: int = 0
    scaled: bool = False
    """also time the runner with the policy of zeros on 0..255 input (SB3's convention)"""


class Zeros(nn.Module):
    """Logits of zeros: a policy whose forward pass costs (almost) nothing."""

    def __init__(self, n_actions: int) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the policy a device

    def forward(self, x: Tensor) -> Tensor:
        return x.new_zeros(len(x), self.n_actions)


def bare_env(game: str, envs: int, steps: int, seed: int) -> float:
    """Steps/s of the vector env alone, `steps` env steps in all, always action 0."""
    env = make_vector_env(game, envs)
    env.reset(seed=seed)
    actions = np.zeros(envs, dtype=np.int64)
    start = time.perf_counter()
    for _ in range(-(-steps // envs)):
        env.step(actions)
    rate = envs * -(-steps // envs) / (time.perf_counter() - start)
    env.close()
    return rate


def main(args: Args) -> None:
    with torch_threads(args.threads):
        probe = make_vector_env(args.game, 1)
        n_actions, shape = int(probe.single_action_space.n), probe.single_observation_space.shape
        probe.close()
        print(f"{args.game}, K={args.envs}, {args.threads} torch thread(s), {os.cpu_count()} CPU cores")

        def runner(input_scale: float) -> tuple[float, int]:
            policy = Policy(Zeros(n_actions), n_actions, shape, input_scale=input_scale, name="zeros")
            run = evaluate(policy, args.game, None, None, args.envs, args.envs, args.seed, progress=False)
            return run.summary["steps_per_s"], int(run.summary["steps"])

        a, steps = runner(1.0)
        print(f"(a) runner, policy of zeros: {a:.0f} steps/s ({steps} steps)")
        b = bare_env(args.game, args.envs, steps, args.seed)
        print(f"(b) bare vector env, action 0: {b:.0f} steps/s")
        if args.scaled:
            scaled, _ = runner(255.0)
            print(
                f"(a') runner, policy of zeros on 0..255 input: {scaled:.0f} steps/s, {scaled / b:.2f} of (b)"
            )
        print(f"ratio {a / b:.2f}")


if __name__ == "__main__":
    run_command(main, Args)
