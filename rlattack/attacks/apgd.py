"""Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks") in L-inf and L2, with the cross-entropy or the DLR loss.

PGD's result depends on its step size; APGD has none to tune. It starts at 2 * eps, moves with
momentum (alpha = 0.75), and at checkpoints spaced as the paper's (0, 22%, then shrinking by 3% of
the budget to at least 6%) it halves a sample's step and restarts it from its best point when
at most 75% of the steps since the last checkpoint raised the loss, or when neither the step
nor the best loss changed since then (not at the first checkpoint, as in their code). Every
decision is per sample, so a batch gives what its samples give one by one.

DLR, -(Z_y - max_{i != y} Z_i) / (Z_pi1 - Z_pi3), is a margin divided by the spread of the top
three logits: unchanged by a shift or a rescaling of the logits, so a network whose outputs are
scaled until its softmax saturates cannot hide from it. It needs at least 3 actions.

The result is, per sample, the last point that changed the action (or hit the target), else the
point of highest loss. Units follow PGD: L-inf radius eps; L2 radius eps * sqrt(d).

Shapes: `x` is `(N, *obs_shape)` in [0, 1]; `target` is `(N,)` action indices.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from rlattack.attacks.base import (
    Attack,
    Norm,
    Perturbation,
    Surface,
    TargetRule,
    ball_radius,
    check_iterative,
    clip_delta,
    input_gradient,
    norm_step,
    project,
    random_start,
)
from rlattack.errors import UserInputError
from rlattack.policies import Policy

ApgdLoss = Literal["ce", "dlr"]
MOMENTUM = 0.75
"""alpha: the weight of the new step against the last move (Croce & Hein's choice)"""
RHO = 0.75
"""a checkpoint halves the step when at most this share of its steps raised the loss"""


def dlr(logits: Tensor, label: Tensor) -> Tensor:
    """(N,) Croce & Hein's difference of logits ratio, high when `label` is far from the top."""
    top = logits.sort(dim=1, descending=True).values
    own = logits.gather(1, label.view(-1, 1)).squeeze(1)
    others = logits.masked_fill(F.one_hot(label, logits.shape[1]).bool(), -torch.inf).amax(dim=1)
    return -(own - others) / (top[:, 0] - top[:, 2] + 1e-12)


def checkpoints(steps: int) -> list[int]:
    """The iterations after which APGD decides whether to halve each step (Croce & Hein's p_j)."""
    points, p, previous = [], 0.22, 0.0
    while p < 1:
        points.append(max(round(p * steps), 1))
        p, previous = p + max(p - previous - 0.03, 0.06), p
    return sorted(set(points))


class APGD(Attack):
    """Step-size-free PGD with momentum and checkpoints.

    Args:
        eps: budget on the [0, 1] scale.
        norm: "inf" or "2".
        steps: iterations (one forward and backward pass each, after the one at the start).
        loss: "ce" (cross-entropy of the clean action, or towards the target) or "dlr"
            (untargeted only, at least 3 actions).
        random_start: start from a uniform point of the ball (L-inf) or a random one (L2).
        seed: seeds the random start.

    Example:
        >>> import torch
        >>> from rlattack.policies import Policy
        >>> policy = Policy(torch.nn.Linear(3, 4).double(), n_actions=4, obs_shape=(3,), input_scale=1.0)
        >>> result = APGD(eps=0.1, steps=10, loss="dlr")(policy, torch.full((5, 3), 0.5, dtype=torch.float64))
        >>> bool((result.linf <= 0.1 + 1e-12).all())
        True
    """

    def __init__(
        self,
        eps: float,
        norm: Norm = "inf",
        steps: int = 10,
        loss: ApgdLoss = "ce",
        random_start: bool = True,
        surface: Surface = "stack",
        quantize: bool = False,
        bounds: tuple[float, float] | None = (0.0, 1.0),
        targeted: bool = False,
        target: TargetRule | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(eps, norm, surface, quantize, bounds, targeted, target)
        check_iterative("APGD", norm, steps, None)
        if loss not in ("ce", "dlr"):
            raise UserInputError(f"APGD's loss is ce or dlr, not {loss!r}")
        if loss == "dlr" and self.targeted:
            raise UserInputError("APGD's dlr loss is untargeted: use loss ce for a targeted attack")
        self.steps, self.loss, self.random_start = steps, loss, random_start
        self.seed = seed

    def _loss_and_grad(self, policy: Policy, x: Tensor, label: Tensor, targeted: bool) -> tuple[Tensor, ...]:
        """(N,) loss to ascend, its input gradient, and the logits of the same pass."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            logits = policy(x)
            if self.loss == "dlr":
                value = dlr(logits, label)
            else:
                value = F.cross_entropy(logits, label, reduction="none")
                value = -value if targeted else value
            grad = input_gradient(policy, value.sum(), x)
        return value.detach(), grad.detach(), logits.detach()

    def perturb(self, policy: Policy, x: Tensor, mask: Tensor, target: Tensor | None) -> Perturbation:
        if self.loss == "dlr" and policy.n_actions < 3:
            raise UserInputError(
                f"APGD's dlr loss needs at least 3 actions; {policy.name} has {policy.n_actions}"
            )
        radius = ball_radius(x, self.eps, self.norm, mask)
        shape = (-1, *([1] * (x.ndim - 1)))
        with torch.no_grad():
            clean_logits = policy(x)
        targeted = target is not None
        label = clean_logits.argmax(dim=1) if target is None else target
        delta = torch.zeros_like(x)
        if self.random_start:
            delta = clip_delta(x, random_start(x, mask, self.eps, self.norm, self.seed), self.bounds)

        def fooled(logits: Tensor) -> Tensor:
            action = logits.argmax(dim=1)
            return action == label if targeted else action != label

        loss, grad, logits = self._loss_and_grad(policy, x + delta, label, targeted)
        best_loss, best, best_grad = loss.clone(), delta.clone(), grad.clone()
        found = fooled(logits)
        adv = delta.clone()
        step = torch.full((len(x),), 2.0 * self.eps, dtype=x.dtype, device=x.device)
        previous, rises = delta.clone(), torch.zeros(len(x), device=x.device)
        marks, since = checkpoints(self.steps), 0
        halved_last = torch.ones(len(x), dtype=torch.bool, device=x.device)  # as Croce & Hein's code
        best_at_last = best_loss.clone()
        for i in range(self.steps):
            alpha = MOMENTUM if i > 0 else 1.0
            z = clip_delta(
                x,
                project(
                    delta + norm_step(grad, x + delta, 1.0, self.norm, mask) * step.view(shape),
                    radius,
                    self.norm,
                ),
                self.bounds,
            )
            moved = delta + alpha * (z - delta) + (1 - alpha) * (delta - previous)
            previous, delta = delta, clip_delta(x, project(moved, radius, self.norm), self.bounds)
            loss_before = loss
            loss, grad, logits = self._loss_and_grad(policy, x + delta, label, targeted)
            now = fooled(logits)
            adv = torch.where(now.view(shape), delta, adv)
            found |= now
            rises += (loss > loss_before).to(rises.dtype)
            better = loss > best_loss
            best_loss = torch.where(better, loss, best_loss)
            best = torch.where(better.view(shape), delta, best)
            best_grad = torch.where(better.view(shape), grad, best_grad)
            since += 1
            if i + 1 in marks:
                stalled = rises <= RHO * since
                stalled |= ~halved_last & (best_loss <= best_at_last)
                step = torch.where(stalled, step / 2, step)
                delta = torch.where(stalled.view(shape), best, delta)
                grad = torch.where(stalled.view(shape), best_grad, grad)
                halved_last, best_at_last = stalled, best_loss.clone()
                rises.zero_()
                since = 0
        adv = torch.where(found.view(shape), adv, best)
        return Perturbation(adv, clean_logits)
