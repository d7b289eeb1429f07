"""Projected Gradient Descent (Madry et al. 2018) in L-inf and L2, for policies.

Zhang et al. 2020 (SA-DQN) break vanilla DQN with 10 steps at eps = 1/255 (L-inf). Each step
moves along the FGSM direction of the current point, then projects back onto the eps-ball around
the clean observation and into [0, 1]. The label stays the clean greedy action throughout.

Units follow FGSM: L-inf radius eps; L2 radius eps * sqrt(d) with steps of length
step_size * sqrt(d), so one step of size eps without random start is exactly FGSM.

`loss="margin"` ascends max_{a != a*} Z_a - Z_{a*} instead of the cross-entropy (Carlini & Wagner
2017): on a DQN's Q-values, whose gaps can be large, the softmax saturates and the cross-entropy's
gradient vanishes; the margin's does not (see `rlattack.attacks.base.loss_gradient`).

Shapes: `x` is `(N, *obs_shape)` in [0, 1]; `target` is `(N,)` action indices.
"""

from __future__ import annotations

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
    random_start,
)
from rlattack.policies import Policy


class PGD(Attack):
    """Iterated FGSM with projection.

    Args:
        steps: gradient steps.
        step_size: per-step budget on the eps scale; default 2.5 * eps / steps (Madry et al.).
        random_start: start from a uniform point of the L-inf ball, or a random point of the L2
            ball, instead of the clean observation.
        seed: keys the random start, with each sample's values (`rlattack.attacks.base.random_start`).
        loss: "ce" (cross-entropy, Huang et al.) or "margin" (Carlini & Wagner's f6; untargeted
            max_{a != a*} Z_a - Z_{a*}, targeted Z_t - max_{a != t} Z_a).
    """

    def __init__(
        self,
        eps: float,
        norm: Norm = "inf",
        steps: int = 10,
        step_size: float | None = None,
        random_start: bool = True,
        surface: Surface = "stack",
        quantize: bool = False,
        bounds: tuple[float, float] | None = (0.0, 1.0),
        targeted: bool = False,
        target: TargetRule | None = None,
        seed: int = 0,
        loss: Loss = "ce",
    ) -> None:
        super().__init__(eps, norm, surface, quantize, bounds, targeted, target)
        check_iterative("PGD", norm, steps, step_size)
        self.steps = steps
        self.step_size = 2.5 * self.eps / steps if step_size is None else step_size
        self.random_start = random_start
        self.loss = check_loss(loss)
        self.seed = seed

    def perturb(self, policy: Policy, x: Tensor, mask: Tensor, target: Tensor | None) -> Perturbation:
        radius = ball_radius(x, self.eps, self.norm, mask)
        with torch.no_grad():
            clean_logits = policy(x)
        label = clean_logits.argmax(dim=1) if target is None else target
        delta = torch.zeros_like(x)
        if self.random_start:
            delta = clip_delta(x, random_start(x, mask, self.eps, self.norm, self.seed), self.bounds)
        for _ in range(self.steps):
            grad, _ = loss_gradient(policy, x + delta, label, target is not None, self.loss)
            delta = delta + norm_step(grad, x + delta, self.step_size, self.norm, mask)
            delta = clip_delta(x, project(delta, radius, self.norm), self.bounds)
        return Perturbation(delta, clean_logits)
