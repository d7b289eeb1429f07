"""Maximal Action Difference (MAD) in L-inf and L2: push the policy's whole distribution away.

Zhang et al. 2020, "Robust Deep Reinforcement Learning against Adversarial Perturbations on State
Observations" (SA-MDP); Sun et al. 2022 (PA-AD) call it MaxDiff. It maximises

    KL( pi(.|x) || pi(.|x + delta) )   over   ||delta|| <= eps,

where pi is the softmax of the policy's logits (for a DQN, of its Q-values), by projected
steps along the gradient's sign (L-inf) or direction (L2), like PGD. It needs no label, so it is
untargeted only, and it moves the action distribution even where no single action is about to
flip: a defended agent that survives PGD with cross-entropy can fall to it.

The KL is at its minimum, 0, at delta = 0, so its gradient there is zero: MAD always starts from
a random point of the ball (`rlattack.attacks.base.random_start`, keyed by `seed` and each
sample's values, so a batch gives what its samples give one by one). It returns the last iterate.

Units follow PGD: L-inf radius eps; L2 radius eps * sqrt(d) with steps of length
step_size * sqrt(d), d the number of changeable features per sample.

Shapes: `x` is `(N, *obs_shape)` in [0, 1]; the clean distribution is `(N, n_actions)`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rlattack.attacks.base import (
    Attack,
    Norm,
    Perturbation,
    Surface,
    ball_radius,
    check_iterative,
    clip_delta,
    input_gradient,
    norm_step,
    project,
    random_start,
)
from rlattack.policies import Policy


def kl_gradient(policy: Policy, x: Tensor, clean_log_p: Tensor) -> Tensor:
    """d/dx of sum_i KL(p_i || softmax(policy(x)_i)), for clean log-probabilities (N, A).

    `reduction="sum"` keeps samples independent of the batch; only `x` gets a gradient.
    """
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        log_q = F.log_softmax(policy(x), dim=1)
        kl = F.kl_div(log_q, clean_log_p, reduction="sum", log_target=True)
        grad = input_gradient(policy, kl, x)
    return grad.detach()


class MAD(Attack):
    """Projected sign-gradient ascent of KL(pi(.|x) || pi(.|x + delta)) from a random start.

    Args:
        eps: budget on the [0, 1] scale.
        norm: "inf" or "2" (L1 has no projection here: `UserInputError`).
        steps: gradient steps.
        step_size: per-step budget on the eps scale; default 2.5 * eps / steps, as PGD's.
        surface, quantize, bounds: as for every attack (`rlattack.attacks.base.Attack`).
        seed: keys the random start.

    Example:
        >>> import torch
        >>> from rlattack.policies import Policy
        >>> policy = Policy(torch.nn.Linear(3, 2).double(), n_actions=2, obs_shape=(3,), input_scale=1.0)
        >>> x = torch.full((5, 3), 0.5, dtype=torch.float64)
        >>> result = MAD(eps=0.1, steps=10)(policy, x)
        >>> bool((result.linf <= 0.1 + 1e-12).all())
        True
    """

    def __init__(
        self,
        eps: float,
        norm: Norm = "inf",
        steps: int = 10,
        step_size: float | None = None,
        surface: Surface = "stack",
        quantize: bool = False,
        bounds: tuple[float, float] | None = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        super().__init__(eps, norm, surface, quantize, bounds)
        check_iterative("MAD", norm, steps, step_size)
        self.steps = steps
        self.step_size = 2.5 * self.eps / steps if step_size is None else float(step_size)
        self.seed = seed

    def perturb(self, policy: Policy, x: Tensor, mask: Tensor, target: Tensor | None) -> Perturbation:
        radius = ball_radius(x, self.eps, self.norm, mask)
        with torch.no_grad():
            clean_logits = policy(x)
        clean_log_p = F.log_softmax(clean_logits, dim=1)
        delta = clip_delta(x, random_start(x, mask, self.eps, self.norm, self.seed), self.bounds)
        for _ in range(self.steps):
            grad = kl_gradient(policy, x + delta, clean_log_p)
            delta = delta + norm_step(grad, x + delta, self.step_size, self.norm, mask)
            delta = clip_delta(x, project(delta, radius, self.norm), self.bounds)
        return Perturbation(delta, clean_logits)
