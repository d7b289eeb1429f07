"""Random-noise baseline with the same budget and norm as the gradient attacks.

The FGSM step of `norm_step` taken along a random Gaussian direction instead of the gradient:
L-inf gives +-eps on every feature, L2 a uniformly random direction of norm eps * sqrt(d), L1 a
change of eps * d on randomly chosen features. It tells whether an attack's damage is due to the
gradient or to the budget alone.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlattack.attacks.base import Attack, Norm, Perturbation, Surface, norm_step
from rlattack.attacks.draws import Draws
from rlattack.policies import Policy


class Noise(Attack):
    """Budget-matched random perturbation; `seed` makes a run repeatable."""

    def __init__(
        self,
        eps: float,
        norm: Norm = "inf",
        surface: Surface = "stack",
        quantize: bool = False,
        bounds: tuple[float, float] | None = (0.0, 1.0),
        seed: int | None = None,
    ) -> None:
        super().__init__(eps, norm, surface, quantize, bounds)
        self.draws = Draws(seed)

    def perturb(self, policy: Policy, x: Tensor, mask: Tensor, target: Tensor | None) -> Perturbation:
        with torch.no_grad():
            logits = policy(x)
        direction = self.draws.normal(x.shape, x)
        return Perturbation(norm_step(direction, x, self.eps, self.norm, mask), logits)
