"""SA-DQN (Zhang et al. 2020): DQN whose loss adds a hinge on the certified action margin.

    python -m agents.sadqn --game pong --seed 1 --run-dir runs/pong-dqn-sa --init-from agents/zoo/pong-dqn

For each state s of a batch, with a* the network's greedy action on s, interval bounds
(`rlattack.certify`) give a lower bound m(s) of min_{a != a*} Q(s', a*) - Q(s', a) over every s'
in the L-inf ball of radius eps around s. The loss adds kappa * mean_s max(0, hinge - m(s)): zero
where the margin is already certified with room `hinge`, positive where it is not. eps rises
from 0 to its target (SA-DQN ramps it too), slowly at first, after the replay buffer has refilled.

kappa is a tenth of SA-DQN's. Interval bounds of a network trained without them are loose: on
`pong-dqn`, m(s) is about -15 at eps = 0.018/255, -120 at 0.1/255 and -1,150 at 1/255, where its
Q-values span 0.1. With SA-DQN's kappa (0.005) the regulariser was then about 0.08 a state, near
the whole span of the Q-values, and it drove them flat: a cubic ramp over 500k steps lost every
game 0-21 from 160k steps on (eps 0.018/255 by then), a linear one over 200k steps at once.

Where this differs from SA-DQN's Atari settings (chenhongge/SA_DQN `defaults.json`): the bound is
plain IBP, where SA-DQN mixes in CROWN-IBP's tighter linear relaxation at first; there is no
dueling head or prioritised replay; the run fine-tunes a trained DQN (as RADIAL-DQN does) instead
of training from scratch for 6M steps, so the ramp is shorter (1M steps, against 4M) and cubic
where SA-DQN's is exponential then linear; kappa is 0.0005 (see above); the hinge (1), the step
size (6.25e-5) and the batch (32) are SA-DQN's.

`--bound pgd` is SA-DQN's other solver: m(s) is the margin at a PGD attack on s (margin loss,
random start, `--attack-steps` steps) instead of a certified bound, so the hinge asks for a margin
that this attack cannot break, not one that holds for every s'. A PGD margin is no looser than the
true one, so eps needs no slow cubic start. SA-DQN (`bound_solver: pgd`, 5 PGD steps) clamps the
margin summed over its batch of 32 at -1 and weights it by 0.005; per state that is a gradient of
0.005 until the states' margins average 1/32. The per-state hinge here keeps states independent;
the matching settings, `--kappa 0.16 --hinge 0.03` (0.16 = 0.005 * 32, on the batch mean), drove a
fine-tune of `pong-dqn-adv` to one constant action within 10k updates of a 50k-step ramp (every
game lost in about 760 steps). A fine-tune at kappa 0.02 over a 100k-step ramp kept playing: its
training games averaged +14.0, +14.6 and +9.4 over 20k-step bins, then -6.2 as eps passed 0.6/255,
with whole games still won. That run is the one to continue:

    python -m agents.sadqn --bound pgd --kappa 0.02 --hinge 0.03 --ramp linear --ramp-steps 100000 \
        --run-dir runs/pong-dqn-sa-pgd --init-from agents/zoo/pong-dqn-adv
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from agents.robust_dqn import RobustArgs, RobustDQN, TrainingNetwork, train_robust
from rlattack.attacks import AttackSpec
from rlattack.certify import margin_lower_bounds, network_layers
from rlattack.cli_options import run_command


class Args(RobustArgs):
    run_dir: Path = Path("runs/pong-dqn-sa")
    kappa: float = 0.0005
    """weight of the regulariser in the loss (a tenth of SA-DQN's; see the module docstring)"""
    ramp_steps: int = 1_000_000
    """steps over which eps rises from 0 to --eps"""
    hinge: float = 1.0
    """the certified margin (in Q-value units) beyond which a state adds nothing to the loss"""
    bound: Literal["ibp", "pgd"] = "ibp"
    """how m(s) is found: a certified interval bound, or the margin at a PGD attack"""
    attack_steps: int = 5
    """--bound pgd: PGD steps per state (SA-DQN's 5)"""


def sa_regulariser(network: TrainingNetwork, x: Tensor, eps: float, hinge: float) -> Tensor:
    """mean_s max(0, hinge - m(s)) for states `x` in [0, 1] (see the module docstring).

    Gradients reach the network's weights only: the greedy actions and the input box are constants.
    """
    with torch.no_grad():
        action = network(x).argmax(dim=1)
    margins = margin_lower_bounds(network_layers(network), x.detach(), eps, action)
    margins = margins.scatter(1, action[:, None], torch.inf)  # the greedy action's own margin is 0
    return torch.relu(hinge - margins.amin(dim=1)).mean()


def pgd_regulariser(
    network: TrainingNetwork, x: Tensor, eps: float, hinge: float, steps: int, seed: int
) -> Tensor:
    """mean_s max(0, hinge - m(s)) with m(s) the margin of s's greedy action at a PGD attack on s.

    The attack (margin loss, random start) is a constant: gradients reach the weights through the
    Q-values at the attacked states only.
    """
    attack = AttackSpec(name="pgd", eps=eps, steps=steps, loss="margin").build(seed=seed)
    assert attack is not None
    result = attack(network, x.detach())
    action = result.clean_action  # the attack's own clean pass gives the greedy action
    q = network(result.adv.detach())
    own = q.gather(1, action[:, None]).squeeze(1)
    other = q.scatter(1, action[:, None], -torch.inf).amax(dim=1)
    return torch.relu(hinge - (own - other)).mean()


class SaDQN(RobustDQN):
    """DQN with SA-DQN's regulariser (kappa, hinge and eps from `args`)."""

    def robust_loss(self, x: Tensor) -> Tensor | None:
        args, eps = self.args, self.eps_now()
        if args is None or eps == 0.0:
            return None
        if args.bound == "pgd":
            steps, seed = args.attack_steps, self._n_updates
            return args.kappa * pgd_regulariser(self.network(x), x, eps, args.hinge, steps, seed)
        return args.kappa * sa_regulariser(self.network(x), x, eps, args.hinge)


def main(args: Args) -> None:
    train_robust(SaDQN, args, "sadqn")


if __name__ == "__main__":
    run_command(main, Args)
