"""A sampling agent under white-box attack: actions drawn from the attack's logits, in one run.

    python benchmarks/sampled_actions.py [--agent pong-a3c] [--envs 5] [--calls 60]

`Attacker.observe` with `act="sample"` draws the clean and the attacked action from the logits the
attack has already computed (a). The transfer path must run the acting policy on both
observations itself, two more forward passes; crafting on the victim as its own `source` takes
that path with the same attack, draws and actions (b), which is what every sampled white-box step
cost before. Both time the same `calls` batches of real observations, alternating (a) and (b)
three times; the actions are checked to be equal. The last line is `ratio N` = (a) / (b).
"""

from __future__ import annotations

import os
import time

import numpy as np

from rlattack.attacks import FGSM
from rlattack.cli_options import CommandArgs, run_command
from rlattack.envs import make_vector_env
from rlattack.grid.run import torch_threads
from rlattack.loading import load_policy
from rlattack.policies import Policy
from rlattack.rollout.attacker import Attacker


class Args(CommandArgs):
    agent: str = "pong-a3c"
    """an actor-critic victim: a zoo name or torch:PATH"""
    game: str = "pong"
    eps: float = 0.001
    """FGSM L-inf budget on the [0, 1] scale"""
    envs: int = 5
    """observations per `observe` call"""
    calls: int = 60
    """`observe` calls timed per round"""
    threads: int = 1
    seed: int = 0


def observations(game: str, envs: int, calls: int, seed: int) -> list[np.ndarray]:
    """`calls` batches of uint8 observations from random play, one batch every 4 steps."""
    env = make_vector_env(game, envs)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    kept = []
    for t in range(4 * calls):
        if t % 4 == 0:
            kept.append(obs.copy())
        obs, *_ = env.step(rng.integers(env.single_action_space.n, size=envs))
    env.close()
    return kept


def timed(
    policy: Policy, source: Policy | None, batches: list[np.ndarray], a: Args
) -> tuple[float, list[np.ndarray]]:
    """Attacked steps per second of one pass over `batches`, and the actions taken."""
    attacker = Attacker(
        policy, FGSM(a.eps, norm="inf"), num_envs=a.envs, source=source, act="sample", seed=a.seed
    )
    envs, no_new_game, steps = np.arange(a.envs), np.zeros(a.envs, dtype=bool), np.zeros(a.envs)
    start = time.perf_counter()
    actions = [attacker.observe(obs, no_new_game, steps, envs).action for obs in batches]
    return len(batches) * a.envs / (time.perf_counter() - start), actions


def main(a: Args) -> None:
    with torch_threads(a.threads):
        policy = load_policy(a.agent, "cpu")
        batches = observations(a.game, a.envs, a.calls, a.seed)
        timed(policy, None, batches[:5], a)  # warm up
        print(
            f"{a.agent} on {a.game}, FGSM L-inf eps={a.eps}, act=sample, {a.envs} envs, "
            f"{a.threads} torch thread(s), {os.cpu_count()} CPU cores"
        )
        rates_a, rates_b = [], []
        for _ in range(3):
            rate_a, actions_a = timed(policy, None, batches, a)
            rate_b, actions_b = timed(policy, policy, batches, a)
            assert all(np.array_equal(x, y) for x, y in zip(actions_a, actions_b, strict=True))
            rates_a.append(rate_a)
            rates_b.append(rate_b)
        a_rate, b_rate = float(np.median(rates_a)), float(np.median(rates_b))
        print(f"(a) draws from the attack's logits: {a_rate:.0f} attacked steps/s (median of 3)")
        print(f"(b) two more forward passes: {b_rate:.0f} attacked steps/s (median of 3); same actions")
        print(f"ratio {a_rate / b_rate:.2f}")


if __name__ == "__main__":
    run_command(main, Args)
