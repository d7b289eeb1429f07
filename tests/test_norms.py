"""The norms an attack reports count what really reached the policy, not float rounding."""

from __future__ import annotations

import torch

from rlattack.attacks.base import Attack, Perturbation
from rlattack.policies import Policy
from tests.conftest import SMALL_SHAPE, tiny_net


class Fixed(Attack):
    """Adds a given perturbation, whatever the policy."""

    def __init__(self, delta: torch.Tensor) -> None:
        super().__init__(eps=1.0)
        self.delta = delta

    def perturb(self, policy: Policy, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None):
        with torch.no_grad():
            return Perturbation(self.delta, policy(x))


def test_l0_counts_features_that_moved_not_rounding_residues() -> None:
    policy = Policy(tiny_net(), 3, SMALL_SHAPE, input_scale=1.0)  # float32, as agents play
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, *SMALL_SHAPE), generator=generator).float() / 255
    step = (torch.randint(0, 2, x.shape, generator=generator).float() * 2 - 1) / 255
    cancelled = (x + step - step) - x  # no net movement, but float rounding leaves ulps behind
    assert (cancelled != 0).any()
    result = Fixed(cancelled)(policy, x)
    assert result.l0.tolist() == [0.0] * 4
    moved = torch.zeros_like(x)
    moved[:, 0, :2, :3] = 1 / 255  # six features one gray level up
    assert Fixed(moved)(policy, x.clamp(max=0.5)).l0.tolist() == [6.0] * 4
