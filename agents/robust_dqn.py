"""What the robust DQN recipes share: SB3's DQN update with a hook for robust training.

`RobustDQN.train` is SB3's `DQN.train` (Huber TD loss against the target network, gradient-norm
clipping) with two additions: `robust_loss` adds a term to the loss (SA-DQN's regulariser), and
`seen` replaces the states the TD loss is taken on (adversarial training). Both see the batch's
observations on the [0, 1] scale and the run's step, for schedules that ramp eps up.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3 import DQN
from torch import Tensor, nn

from agents.dqn import Args as DqnArgs
from agents.dqn import start
from agents.training import learn, run_record


class TrainingNetwork(nn.Module):
    """The network being trained, seen as a policy on [0, 1] observations (`input_scale` 255 for
    Atari frames) by the attacks and the interval bounds. Unlike `rlattack.policies.Policy` it
    leaves the weights trainable: attacks take gradients with respect to the input only
    (`torch.autograd.grad`), so nothing lands on the weights."""

    def __init__(
        self, net: nn.Module, n_actions: int, obs_shape: tuple[int, ...], input_scale: float = 255.0
    ) -> None:
        super().__init__()
        self.net = net
        self.n_actions = n_actions
        self.obs_shape = tuple(obs_shape)
        self.input_scale = input_scale
        self.name = "training network"
        self.outputs = "q-values"

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x * self.input_scale)


class RobustArgs(DqnArgs):
    eps: float = 1 / 255
    """the L-inf budget trained against, on the [0, 1] scale (1/255 is one gray level)"""
    ramp_delay: int = 20_000
    """steps of this run before eps starts to rise from 0 (the replay buffer refills first)"""
    ramp_steps: int = 500_000
    """steps over which eps rises from 0 to --eps"""
    ramp: Literal["cubic", "linear"] = "cubic"
    """the rise: cubic (eps * p^3 at a share p of the ramp) starts slowly, as SA-DQN's smoothed
    schedule does, so a network trained without bounds is not overwhelmed by loose ones at first"""
    learning_rate: float = 6.25e-5
    """Adam step size (SA-DQN's)"""


class RobustDQN(DQN):
    """SB3's DQN with the hooks of the module docstring; the defaults leave plain DQN."""

    robust_from: int = 0
    """the step the robust run started from (the step of the victim it fine-tunes), where the eps
    ramp starts; set from the run record on each start, so it survives a new machine too"""
    args: RobustArgs | None = None

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "args"]  # the command line gives them again

    def eps_now(self) -> float:
        """The budget at this step: 0, then a ramp to `args.eps` (SA-DQN ramps it too)."""
        if self.args is None:
            return 0.0
        done = self.num_timesteps - self.robust_from - self.args.ramp_delay
        share = float(np.clip(done / max(self.args.ramp_steps, 1), 0.0, 1.0))
        return self.args.eps * (share**3 if self.args.ramp == "cubic" else share)

    def network(self, x: Tensor) -> TrainingNetwork:
        """The online network as a policy on observations shaped like `x`."""
        return TrainingNetwork(self.q_net, int(self.action_space.n), tuple(x.shape[1:]))

    def seen(self, x: Tensor) -> Tensor:
        """The states the TD loss is taken on (floats in [0, 1]); the clean ones by default."""
        return x

    def robust_loss(self, x: Tensor) -> Tensor | None:
        """A term added to the TD loss for clean states `x` in [0, 1]; none by default."""
        return None

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        losses, extras = [], []
        for _ in range(gradient_steps):
            data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
            with torch.no_grad():
                next_q = self.q_net_target(data.next_observations).max(dim=1).values.reshape(-1, 1)
                target = data.rewards + (1 - data.dones) * self.gamma * next_q
            x = data.observations.float() / 255.0
            current = self.q_net(self.seen(x) * 255.0).gather(1, data.actions.long())
            loss = F.smooth_l1_loss(current, target)
            extra = self.robust_loss(x)
            if extra is not None:
                extras.append(extra.item())
                loss = loss + extra
            losses.append(loss.item())
            self.policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
        self._n_updates += gradient_steps
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        if extras:
            self.logger.record("train/robust_loss", np.mean(extras))


def train_robust(algorithm: type[RobustDQN], args: RobustArgs, recipe: str) -> RobustDQN:
    """Train (or resume) a robust recipe's DQN. eps ramps from the step of the victim the run
    fine-tunes (its record's `init_from`), or from step 0 for a run trained from scratch, whether
    it resumes from its checkpoint or from its bundled victim on a new machine."""
    model = start(algorithm, args)
    record = run_record(args.run_dir, args, "dqn", recipe=recipe)
    model.robust_from = int(record.get("init_from", {}).get("timesteps", 0))
    model.args = args
    learn(model, args, record)
    return model
