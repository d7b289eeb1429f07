"""How near deterministic a victim plays: its policy's entropy on the states of its own sampled play.

    python -m agents.entropy --agent pong-trpo --game pong

A policy-gradient learner explores only through its policy's randomness. One whose entropy has
collapsed stops finding better play, which is why the TRPO recipe's surrogate has an entropy bonus
(`--entropy-coef`); this measures it, for a zoo victim or a training run's weights
(`sb3:runs/X/checkpoint.zip` of an SB3 recipe, `safetensors:runs/X/weights.safetensors` of TRPO's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from rlattack.cli_options import CommandArgs, run_command
from rlattack.envs import make_vector_env
from rlattack.errors import UserInputError
from rlattack.loading import load_policy


@dataclass(frozen=True)
class Spread:
    entropy: float
    """mean entropy of the action distribution, in nats"""
    top_probability: float
    """mean probability of the most likely action"""
    near_deterministic: float
    """share of states whose most likely action has probability above 0.9"""
    uniform: float
    """the entropy of uniform play over the same actions, the most there is"""


def spread(logits: torch.Tensor) -> Spread:
    """Summary of the action distributions given by `logits` `(N, n_actions)`."""
    probs = logits.softmax(dim=1)
    entropy = -(probs * logits.log_softmax(dim=1)).sum(dim=1)
    top = probs.max(dim=1).values
    near = (top > 0.9).float().mean().item()
    return Spread(entropy.mean().item(), top.mean().item(), near, math.log(logits.shape[1]))


class Args(CommandArgs):
    agent: str
    """zoo victim name or `sb3:PATH` checkpoint"""
    game: str
    """the game it plays"""
    steps: int = 1500
    """steps of each env; states come from all of them"""
    envs: int = 4
    """games played side by side"""
    seed: int = 3
    """env and sampling seed"""


@torch.no_grad()
def measure(args: Args) -> Spread:
    """The policy's `Spread` over `args.envs * args.steps` states of its sampled play."""
    if args.steps < 1:
        raise UserInputError(f"need at least one step, got {args.steps}")
    policy = load_policy(args.agent)
    if policy.outputs != "logits":
        raise UserInputError(
            f"{args.agent} gives {policy.outputs}, not a policy's logits: it has no entropy to measure"
        )
    env = make_vector_env(args.game, args.envs)
    policy.check_fits(env.single_action_space.n, env.single_observation_space.shape, args.game)
    generator = torch.Generator().manual_seed(args.seed)
    obs, _ = env.reset(seed=args.seed)
    logits = []
    for _ in range(args.steps):
        step_logits = policy(torch.as_tensor(obs).float() / 255.0)
        logits.append(step_logits)
        actions = torch.multinomial(step_logits.softmax(dim=1), 1, generator=generator).squeeze(1)
        obs, *_ = env.step(actions.numpy().astype(np.int64))
    env.close()
    return spread(torch.cat(logits))


def main(args: Args) -> None:
    result = measure(args)
    print(
        f"{args.agent}: entropy {result.entropy:.3f} nats (uniform play: {result.uniform:.3f}), "
        f"top action {result.top_probability:.3f} on average, "
        f"above 0.9 on {result.near_deterministic:.0%} of states"
    )


if __name__ == "__main__":
    run_command(main, Args)
