"""Training throughput of the A3C and TRPO recipes on Pong, on this machine's CPU, in one run.

    python benchmarks/training_speed.py [--rollouts 200] [--trpo-updates 10] [--threads 2]

A3C (one torch thread): the loss and backward pass of a 20-step rollout, run once over the batch
(what a worker does) against the graph built step by step as the rollout is played (the same
gradient); then a worker's whole update (play, loss, shared RMSProp step) in agent steps per
second. TRPO (`--threads` torch threads for both): agent steps per second, play and updates
together, of the project's recipe (`agents.trpo`) and of sb3-contrib's TRPO with the settings
the TRPO victims were first trained with (8 envs x 256 steps, its policy step on every 5th
transition, 3 critic passes). Prints last `ratio A3C-BACKWARD TRPO` (batched / step by step;
ours / sb3-contrib's).
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import time
from typing import Any

import torch
from sb3_contrib import TRPO
from torch.distributions import Categorical

from agents import trpo
from agents.a3c import Args, SharedRMSprop, Worker
from agents.envs import Sb3VecEnv
from agents.training import CtrlC
from rlattack.networks import nature_cnn
from rlattack.observations import OBS_SHAPE


def step_by_step_loss(
    worker: Worker, observations: torch.Tensor, actions: torch.Tensor, returns: torch.Tensor
) -> torch.Tensor:
    """The rollout's loss with one forward pass per step, as a worker plays it without batching."""
    a, total = worker.args, torch.zeros(())
    for t in range(len(actions)):
        logits, value = worker.local.logits_and_value(observations[t : t + 1])
        policy = Categorical(logits=logits)
        advantage = returns[t] - value
        loss = -(policy.log_prob(actions[t : t + 1]) * advantage.detach()) + a.value_coef * advantage.pow(2)
        total = total + (loss - a.entropy_coef * policy.entropy()).sum()
    return total


def a3c(rollouts: int) -> tuple[float, float, float]:
    """Rollouts per second of the batched and the step-by-step backward; steps per second of updates."""
    torch.manual_seed(0)
    shared = nature_cnn(6)
    args = Args(game="pong")
    worker = Worker(
        0, args, shared, SharedRMSprop(shared, 0.99, 1e-5), multiprocessing.Value("q", 0), queue.Queue()
    )
    observations = torch.randint(0, 256, (args.t_max, 4, 84, 84)).float()
    actions, returns = torch.randint(0, 6, (args.t_max,)), torch.randn(args.t_max)
    rates = []
    for loss in (worker.loss, lambda *x: step_by_step_loss(worker, *x)):
        start = time.perf_counter()
        for _ in range(rollouts):
            worker.local.zero_grad()
            loss(observations, actions, returns).backward()
        rates.append(rollouts / (time.perf_counter() - start))
    start, steps = time.perf_counter(), 0
    for _ in range(rollouts):
        steps += worker.update()
    return rates[0], rates[1], steps / (time.perf_counter() - start)


SB3_TRPO: dict[str, Any] = {
    "n_steps": 256,
    "learning_rate": 2.5e-4,
    "target_kl": 0.01,
    "n_critic_updates": 3,
    "batch_size": 256,
    "cg_max_steps": 10,
    "sub_sampling_factor": 5,
    "policy_kwargs": {"share_features_extractor": False},
}
"""sb3-contrib's TRPO as `python -m agents.trpo` ran it before the recipe was our own (8 envs)"""


def sb3_trpo_rate(updates: int) -> float:
    """Agent steps per second of sb3-contrib's TRPO over `updates` rollouts of 2,048, after one."""
    env = Sb3VecEnv("pong", 8, seed=0)
    model = TRPO("CnnPolicy", env, seed=0, device="cpu", **SB3_TRPO)
    batch = 8 * SB3_TRPO["n_steps"]
    model.learn(batch)  # the first rollout pays for allocation
    start = time.perf_counter()
    model.learn(updates * batch, reset_num_timesteps=False)
    rate = updates * batch / (time.perf_counter() - start)
    env.close()
    return rate


def own_trpo_rate(updates: int) -> float:
    """Agent steps per second of `agents.trpo` (its defaults) over `updates` rollouts, after one."""
    args = trpo.Args(game="pong")
    env = trpo.make_envs("pong", args.n_envs, seed=0, life_loss=False)
    torch.manual_seed(0)
    trainer = trpo.Trainer(args, env, trpo.build_model("pong", OBS_SHAPE, int(env.action_space.n)), 0)
    with CtrlC() as never:
        for k in range(updates + 1):
            if k == 1:  # the first rollout pays for allocation
                start = time.perf_counter()
            collected = trainer.collect(never)
            assert collected is not None
            trainer.update(collected[0])
    rate = updates * args.n_envs * args.n_steps / (time.perf_counter() - start)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=200, help="A3C rollouts timed per variant")
    parser.add_argument("--trpo-updates", type=int, default=10, help="TRPO rollouts timed per recipe")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of both TRPO recipes")
    args = parser.parse_args()
    torch.set_num_threads(1)
    batched, stepwise, update = a3c(args.rollouts)
    print(f"A3C loss+backward of a 20-step rollout: batched {batched:.1f}/s, step by step {stepwise:.1f}/s")
    print(f"A3C worker update: {update:.0f} agent steps/s")
    torch.set_num_threads(args.threads)
    ours, theirs = own_trpo_rate(args.trpo_updates), sb3_trpo_rate(args.trpo_updates)
    print(f"TRPO, {args.threads} torch threads: agents.trpo {ours:.0f} steps/s, sb3-contrib {theirs:.0f}")
    print(f"ratio {batched / stepwise:.2f} {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
