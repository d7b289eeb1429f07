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
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from agents.robust_dqn import RobustArgs, RobustDQN, TrainingNetwork, train_robust
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


def sa_regulariser(network: TrainingNetwork, x: Tensor, eps: float, hinge: float) -> Tensor:
    """mean_s max(0, hinge - m(s)) for states `x` in [0, 1] (see the module docstring).

    Gradients reach the network's weights only: the greedy actions and the input box are constants.
    """
    with torch.no_grad():
        action = network(x).argmax(dim=1)
    margins = margin_lower_bounds(network_layers(network), x.detach(), eps, action)
    margins = margins.scatter(1, action[:, None], torch.inf)  # the greedy action's own margin is 0
    return torch.relu(hinge - margins.amin(dim=1)).mean()


class SaDQN(RobustDQN):
    """DQN with SA-DQN's regulariser (kappa, hinge and eps from `args`)."""

    def robust_loss(self, x: Tensor) -> Tensor | None:
        if self.args is None or self.eps_now() == 0.0:
            return None
        return self.args.kappa * sa_regulariser(self.network(x), x, self.eps_now(), self.args.hinge)


def main(args: Args) -> None:
    train_robust(SaDQN, args, "sadqn")


if __name__ == "__main__":
    run_command(main, Args)
