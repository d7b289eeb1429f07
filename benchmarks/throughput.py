"""Attacked env steps per second: the batched runner against a per-env loop, in one run.

(a) the batched runner: K envs in ale-py's C++ vector env, one FGSM call per step for all K;
(b) a per-env loop: one gymnasium env, FGSM on a batch of one, step, repeat (how the public RL
    attack repos loop);
(c) the batched runner with no attack (the ceiling the attack eats into).

All three play the same victim with the same FGSM L-inf attack object, on the same device and
torch thread count. The last line is `ratio N` = (a) / (b). Before it, `batching gain` is what
batching saves in the attack alone: the FGSM call's time per sample at batch 1 over its time per
sample at batch K. (a) / (b) cannot exceed it by much, whatever the runner does, since (b) is
mostly that call at batch 1.

    python benchmarks/throughput.py --envs 16
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from rlattack.attacks import FGSM
from rlattack.cli_options import CommandArgs, run_command
from rlattack.envs import make_env
from rlattack.grid.run import torch_threads
from rlattack.loading import load_policy
from rlattack.policies import Policy, resolve_device
from rlattack.rollout.evaluate import evaluate


class Args(CommandArgs):
    agent: str = "pong-dqn"
    """victim: a zoo name, sb3:PATH.zip or torch:PATH"""
    game: str = "pong"
    eps: float = 1 / 255
    """FGSM L-inf budget on the [0, 1] scale"""
    envs: int = 16
    """K, envs of the batched runner; each plays `games_per_env` whole games"""
    games_per_env: int = 1
    loop_steps: int = 1000
    """steps timed in the per-env loop"""
    device: str = "cpu"
    threads: int = 1
    """torch intra-op threads (1: the machine's other core stays free for the envs)"""
    seed: int = 0


def per_env_loop(policy: Policy, attack: FGSM, game: str, steps: int, seed: int) -> float:
    """Attacked steps per second of one env and a batch of one."""
    env = make_env(game)
    obs, _ = env.reset(seed=seed)
    start = time.perf_counter()
    for _ in range(steps):
        x = torch.as_tensor(np.asarray(obs)[None], device=policy.device).float() / 255.0
        action = int(attack(policy, x).adv_action[0])
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            obs, _ = env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def per_sample(policy: Policy, attack: FGSM, batch: int, reps: int = 50) -> float:
    """Seconds per sample of one FGSM call on `batch` random observations (after a warm-up)."""
    x = torch.rand(batch, *policy.obs_shape, device=policy.device)
    attack(policy, x)
    if policy.device.type == "cuda":
        torch.cuda.synchronize(policy.device)
    start = time.perf_counter()
    for _ in range(reps):
        attack(policy, x)
    if policy.device.type == "cuda":
        torch.cuda.synchronize(policy.device)
    return (time.perf_counter() - start) / (reps * batch)


def main(args: Args) -> None:
    device = resolve_device(args.device)
    with torch_threads(args.threads):
        policy = load_policy(args.agent, device)
        attack = FGSM(args.eps, norm="inf")
        attack(policy, torch.rand(args.envs, *policy.obs_shape, device=policy.device))  # warm up
        games = args.envs * args.games_per_env
        print(
            f"{args.agent} on {args.game}, FGSM L-inf eps={args.eps:.5f}, {device}, "
            f"{args.threads} torch thread(s), {os.cpu_count()} CPU cores"
        )
        batched = evaluate(policy, args.game, attack, None, games, args.envs, args.seed, progress=False)
        a = batched.summary["attacked_steps_per_s"]
        print(
            f"(a) batched runner, K={args.envs}, FGSM: {a:.0f} attacked steps/s "
            f"({batched.summary['steps']} steps)"
        )
        b = per_env_loop(policy, attack, args.game, args.loop_steps, args.seed)
        print(f"(b) per-env loop, batch of one, FGSM: {b:.0f} attacked steps/s ({args.loop_steps} steps)")
        clean = evaluate(policy, args.game, None, None, games, args.envs, args.seed, progress=False)
        c = clean.summary["steps_per_s"]
        print(
            f"(c) batched runner, K={args.envs}, no attack: {c:.0f} steps/s ({clean.summary['steps']} steps)"
        )
        print(f"(a)/(c) {a / c:.2f}")
        one, many = per_sample(policy, attack, 1), per_sample(policy, attack, args.envs)
        print(
            f"FGSM call per sample: {one * 1e3:.2f} ms at batch 1, {many * 1e3:.2f} ms at batch {args.envs}"
        )
        print(f"batching gain {one / many:.2f}")
        print(f"ratio {a / b:.2f}")


if __name__ == "__main__":
    run_command(main, Args)
