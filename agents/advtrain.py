"""Adversarial training of a DQN (Pattanaik et al. 2018; Behzadan & Munir 2017, "Whatever does not
kill deep reinforcement learning, makes it stronger").

    python -m agents.advtrain --game pong --seed 1 --run-dir runs/pong-dqn-adv --init-from agents/zoo/pong-dqn

Each state of a batch is, with probability `--share`, replaced in the TD loss by its PGD (or FGSM)
perturbation against the network being trained: the untargeted attack of `rlattack.attacks` on the
network's own greedy action, inside the L-inf ball of the current eps and [0, 1]. The TD target
still comes from the clean next state, so the network learns to act on the perturbed state as it
should on the clean one. eps rises linearly from 0 over the first 200k steps: unlike SA-DQN's
interval bounds, a PGD perturbation is no larger than eps, so the loss needs no slow cubic start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from agents.robust_dqn import RobustArgs, RobustDQN, TrainingNetwork, train_robust
from rlattack.attacks import AttackSpec
from rlattack.cli_options import run_command


class Args(RobustArgs):
    run_dir: Path = Path("runs/pong-dqn-adv")
    ramp: Literal["cubic", "linear"] = "linear"
    """the rise of eps from 0 to --eps"""
    ramp_delay: int = 0
    """steps of this run before eps starts to rise from 0"""
    ramp_steps: int = 200_000
    """steps over which eps rises from 0 to --eps"""
    attack: Literal["pgd", "fgsm"] = "pgd"
    """the attack that makes the training states (random start for PGD)"""
    attack_steps: int = 3
    """PGD steps per training state (PGD-10 evaluates; fewer keep training affordable)"""
    share: float = 0.5
    """probability that a state of a batch is replaced by its perturbation"""


def perturb(network: TrainingNetwork, x: Tensor, args: Args, eps: float, seed: int) -> Tensor:
    """`x` with each state replaced by its attacked version with probability `args.share`."""
    generator = torch.Generator().manual_seed(seed)
    pick = torch.rand(len(x), generator=generator) < args.share
    if eps == 0.0 or not pick.any():
        return x
    steps = {"steps": args.attack_steps} if args.attack != "fgsm" else {}  # FGSM takes one step
    attack = AttackSpec(name=args.attack, eps=eps, **steps).build(seed=seed)
    assert attack is not None
    seen = x.clone()
    seen[pick.to(x.device)] = attack(network, x[pick.to(x.device)]).adv.detach()
    return seen


class AdvTrainDQN(RobustDQN):
    """DQN trained on attacked states (`perturb`), with the share, attack and eps from `args`."""

    def seen(self, x: Tensor) -> Tensor:
        if self.args is None:
            return x
        return perturb(self.network(x), x, self.args, self.eps_now(), seed=self._n_updates)  # type: ignore[arg-type]


def main(args: Args) -> None:
    train_robust(AdvTrainDQN, args, "advtrain")


if __name__ == "__main__":
    run_command(main, Args)
