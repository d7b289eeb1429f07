"""Training throughput of the A3C and TRPO recipes on Pong, on this machine's CPU, in one run.

    python benchmarks/training_speed.py [--rollouts 200] [--trpo-updates 2]

A3C: the loss and backward pass of a 20-step rollout, run once over the batch (what a worker
does) against the graph built step by step as the rollout is played (the same gradient); then a
worker's whole update (play, loss, shared RMSProp step) in agent steps per second. TRPO: agent
steps per second of sb3-contrib's TRPO with the recipe's settings, its policy step on every
transition and on every 5th (the recipe). One torch thread throughout. Prints last
`ratio A3C-BACKWARD TRPO` (batched / step by step; every 5th / every transition).
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import time

import torch
from sb3_contrib import TRPO
from torch.distributions import Categorical

from agents import trpo
from agents.a3c import Args, SharedRMSprop, Worker
from agents.envs import Sb3VecEnv
from rlattack.networks import nature_cnn


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


def trpo_rate(sub_sampling_factor: int, updates: int) -> float:
    """Agent steps per second of TRPO over `updates` rollouts of 2,048 transitions, after one."""
    settings = trpo.Args(sub_sampling_factor=sub_sampling_factor)
    env = Sb3VecEnv("pong", settings.n_envs, seed=0)
    model = TRPO("CnnPolicy", env, seed=0, device="cpu", **settings.hyperparameters())
    batch = settings.n_envs * settings.n_steps
    model.learn(batch)  # the first rollout pays for allocation
    start = time.perf_counter()
    model.learn(updates * batch, reset_num_timesteps=False)
    rate = updates * batch / (time.perf_counter() - start)
    env.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=200, help="A3C rollouts timed per variant")
    parser.add_argument("--trpo-updates", type=int, default=2, help="TRPO rollouts timed per variant")
    args = parser.parse_args()
    torch.set_num_threads(1)
    batched, stepwise, update = a3c(args.rollouts)
    print(f"A3C loss+backward of a 20-step rollout: batched {batched:.1f}/s, step by step {stepwise:.1f}/s")
    print(f"A3C worker update: {update:.0f} agent steps/s")
    every, fifth = trpo_rate(1, args.trpo_updates), trpo_rate(5, args.trpo_updates)
    print(f"TRPO: {every:.0f} agent steps/s with every transition, {fifth:.0f} with every 5th")
    print(f"ratio {batched / stepwise:.2f} {fifth / every:.2f}")


if __name__ == "__main__":
    main()
