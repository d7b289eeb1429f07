"""Momentum Iterative FGSM (MI-FGSM) in L-inf and L2, for policies.

Dong et al. 2018, "Boosting Adversarial Attacks with Momentum"; Sun et al. 2022 (PA-AD) use it as
the "MinBest + Momentum" baseline. Each step accumulates the loss gradient, normalised per sample
by its L1 norm, into a decaying velocity

    g_{t+1} = decay * g_t + grad_t / ||grad_t||_1

and moves along sign(g) (L-inf) or g / ||g||_2 (L2), then projects onto the eps-ball around the
clean observation and into [0, 1]. The velocity keeps the direction steady where single gradients
flip from step to step (saturated or noisy networks). It starts at the clean observation, so on a
linear model every gradient points the same way and `steps` steps of size eps / steps are FGSM.

Units follow PGD: L-inf radius eps; L2 radius eps * sqrt(d) with steps of length
step_size * sqrt(d), d the number of changeable features per sample.

Shapes: `x` is `(N, *obs_shape)` in [0, 1]; `target` is `(N,)` action indices.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rlattack.attacks.base import (
    Attack,
    Loss,
    Norm,
    Perturbation,
    Surface,
    TargetRule,
    ball_radius,
    check_iterative,
    check_loss,
    clip_delta,
    loss_gradient,
    norm_step,
    project,
)
from rlattack.errors import UserInputError
from rlattack.policies import Policy


class Momentum(Attack):
    """Iterated FGSM along a decaying sum of L1-normalised gradients (MI-FGSM).

    Args:
        eps: budget on the [0, 1] scale.
        norm: "inf" or "2" (L1 has no projection here: `UserInputError`).
        steps: gradient steps.
        step_size: per-step budget on the eps scale; default eps / steps (Dong et al.), so the
            steps together never overshoot the ball.
        decay: mu, the weight of the past velocity; 0 is iterated FGSM, 1 (Dong et al.) sums.
        surface, quantize, bounds: as for every attack (`rlattack.attacks.base.Attack`).
        targeted, target: aim at target actions (as FGSM and PGD) instead of away from the clean one.
        loss: "ce" (cross-entropy) or "margin" (Carlini & Wagner's f6; see `loss_gradient`).

    Example:
        >>> import torch
        >>> from rlattack.policies import Policy
        >>> policy = Policy(torch.nn.Linear(3, 2).double(), n_actions=2, obs_shape=(3,), input_scale=1.0)
        >>> x = torch.full((4, 3), 0.5, dtype=torch.float64)
        >>> result = Momentum(eps=0.1, steps=5)(policy, x)
        >>> bool(torch.allclose(result.linf, torch.full((4,), 0.1, dtype=torch.float64)))
        True
    """

    def __init__(
        self,
        eps: float,
        norm: Norm = "inf",
        steps: int = 10,
        step_size: float | None = None,
        decay: float = 1.0,
        surface: Surface = "stack",
        quantize: bool = False,
        bounds: tuple[float, float] | None = (0.0, 1.0),
        targeted: bool = False,
        target: TargetRule | None = None,
        loss: Loss = "ce",
    ) -> None:
        super().__init__(eps, norm, surface, quantize, bounds, targeted, target)
        check_iterative("Momentum", norm, steps, step_size)
        if not isinstance(decay, (int, float)) or not math.isfinite(decay) or decay < 0:
            raise UserInputError(f"momentum decay must be a finite number >= 0, got {decay!r}")
        self.steps = steps
        self.step_size = self.eps / steps if step_size is None else float(step_size)
        self.decay = float(decay)
        self.loss = check_loss(loss)

    def perturb(self, policy: Policy, x: Tensor, mask: Tensor, target: Tensor | None) -> Perturbation:
        radius = ball_radius(x, self.eps, self.norm, mask)
        shape = (-1, *([1] * (x.ndim - 1)))
        delta = torch.zeros_like(x)
        velocity = torch.zeros_like(x)
        label, clean_logits = target, None
        for _ in range(self.steps):
            grad, logits = loss_gradient(policy, x + delta, label, target is not None, self.loss)
            if clean_logits is None:  # the first step is at the clean point: its pass gives the label
                clean_logits = logits
                label = logits.argmax(dim=1) if target is None else target
            grad = grad * mask
            l1 = grad.flatten(1).abs().sum(dim=1)
            velocity = self.decay * velocity + grad / torch.where(l1 > 0, l1, torch.ones_like(l1)).view(shape)
            delta = delta + norm_step(velocity, x + delta, self.step_size, self.norm, mask)
            delta = clip_delta(x, project(delta, radius, self.norm), self.bounds)
        assert clean_logits is not None  # steps >= 1
        return Perturbation(delta, clean_logits)
