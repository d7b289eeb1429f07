"""What robust training costs per DQN update, against a plain one, measured in one run.

On batches of the victim's own play and its trainable network: (a) a plain update of the online
network (forward, Huber loss, backward, Adam step; the target network's forward pass, the same in
all three, is left out), (b) the same with SA-DQN's interval-bound regulariser
(`agents.sadqn`), (c) the same on states half of which adversarial training (`agents.advtrain`)
replaced by their PGD-3 perturbation. Medians of `repeats` updates each; the last lines are the
ratios (b)/(a) and (c)/(a).

    python benchmarks/robust_training_cost.py --batch 32
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from agents.advtrain import Args as AdvArgs
from agents.advtrain import perturb
from agents.robust_dqn import TrainingNetwork
from agents.sadqn import sa_regulariser
from rlattack.blackbox.oracle import Oracle
from rlattack.cli_options import CommandArgs, run_command
from rlattack.observations import OBS_SHAPE
from rlattack.rollout.watch import watch
from rlattack.sb3 import sb3_class
from rlattack.weights import load_weights
from rlattack.zoo import load_victim, victim


class Args(CommandArgs):
    agent: str = "pong-dqn"
    """a zoo DQN victim"""
    batch: int = 32
    """transitions per update (SB3's and SA-DQN's 32)"""
    repeats: int = 30
    threads: int = 1


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    v = victim(args.agent)
    policy = sb3_class("dqn").policy_aliases["CnnPolicy"](
        spaces.Box(0, 255, OBS_SHAPE, np.uint8), spaces.Discrete(v.n_actions), lambda _: 6.25e-5
    )
    load_weights(policy, v.path / "weights.safetensors")
    network = TrainingNetwork(policy.q_net, v.n_actions, OBS_SHAPE)
    optimizer = torch.optim.Adam(policy.q_net.parameters(), lr=6.25e-5)
    data = watch(Oracle(load_victim(args.agent)), v.game, 8 * args.batch, envs=8, seed=0, progress=False)
    states = torch.as_tensor(data.obs).float() / 255.0
    generator = np.random.default_rng(0)

    def update(extra: str) -> float:
        x = states[generator.choice(len(states), args.batch, replace=False)]
        start = time.perf_counter()
        seen = (
            perturb(network, x, AdvArgs(share=0.5, attack_steps=3), 1 / 255, seed=0) if extra == "adv" else x
        )
        q = network(seen)
        loss = F.smooth_l1_loss(q.max(1).values, q.max(1).values.detach() * 0.99)
        if extra == "sa":
            loss = loss + 0.005 * sa_regulariser(network, x, 1 / 255, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    medians = {}
    for kind in ("plain", "sa", "adv"):
        update(kind)  # warm-up
        medians[kind] = statistics.median(update(kind) for _ in range(args.repeats))
    print(f"{args.agent}, batch {args.batch}, cpu, {torch.get_num_threads()} thread(s)")
    print(
        "   ".join(
            f"({k}) {name}: {1000 * medians[name]:.1f} ms" for k, name in zip("abc", medians, strict=True)
        )
    )
    print(f"ratio SA-DQN {medians['sa'] / medians['plain']:.2f}")
    print(f"ratio adversarial training {medians['adv'] / medians['plain']:.2f}")


if __name__ == "__main__":
    run_command(main, Args)
