"""Expectation over Transformation (Athalye et al. 2018) for policies that draw randomness per call.

A randomised policy (input noise, a smoothed vote, dropout left on) gives another output each time
it sees the same observation, so one gradient is one draw's gradient: an attack that follows it
chases noise and reports the policy as robust. EOT attacks the mean instead: `Expectation`'s
logits are the mean of `n` draws of the policy's logits, so its gradient is the mean of the
draws' gradients, and an attack built with `eot=n` crafts on it.

`SmoothedPolicy` (`rlattack.certify.smoothing`) is deterministic: it votes over fixed noise draws,
and its gradient is already the mean over those draws of the base policy's soft vote (Salman et
al. 2019's attack on smoothed classifiers). That attacks the policy as it plays, with its draws;
the exact smoothed policy that `certify` bounds would need fresh draws, which no command attacks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rlattack.errors import UserInputError
from rlattack.policies import Policy


def is_randomized(policy: Policy, x: Tensor) -> bool:
    """Whether the same observations, shown twice, give different outputs."""
    with torch.no_grad():
        return not torch.equal(policy(x), policy(x))


class _Mean(nn.Module):
    def __init__(self, policy: Policy, n: int) -> None:
        super().__init__()
        self.policy, self.n = policy, n

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([self.policy(x) for _ in range(self.n)]).mean(dim=0)


class Expectation(Policy):
    """The mean logits of `n` draws of a randomised `policy` (its gradient: the draws' mean)."""

    def __init__(self, policy: Policy, n: int) -> None:
        if n < 1:
            raise UserInputError(f"EOT needs at least one draw, got {n}")
        super().__init__(
            _Mean(policy, n),
            n_actions=policy.n_actions,
            obs_shape=policy.obs_shape,
            input_scale=1.0,  # the policy scales its own input
            name=f"eot({policy.name}, n={n})",
            outputs=policy.outputs,
        )


def gradient_policy(policy: Policy, n: int) -> Policy:
    """What an attack with `eot=n` differentiates: the mean of `n` draws (n = 1: the policy)."""
    return Expectation(policy, n) if n > 1 else policy
