"""A transfer attack as one attack: crafted on a surrogate policy, shown to the attacked one.

A policy that hides its gradient (a rounding step, saturated outputs) stops every white-box
attack on itself, but not an attack crafted on a policy that plays the same game and does not
hide it (Papernot et al. 2017; Athalye et al. 2018's first sign of obfuscated gradients). The
surrogate may be another victim of the zoo, a substitute trained from queries (`rlattack
substitute`), or any agent; it sees only what the attacked policy sees.

Shapes: `x` is `(N, *obs_shape)` in [0, 1], and both policies take that shape.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlattack.attacks.base import Attack, Perturbation
from rlattack.errors import UserInputError
from rlattack.policies import Policy


class Transfer(Attack):
    """`inner`, crafted on `surrogate` with the surrogate's own greedy actions as labels.

    Its budget, norm and surface are `inner`'s; clipping and rounding are this attack's (the
    same settings), applied once to what reaches the attacked policy.
    """

    def __init__(self, inner: Attack, surrogate: Policy) -> None:
        super().__init__(inner.eps, inner.norm, inner.surface, inner.quantize, inner.bounds)
        if inner.targeted:
            raise UserInputError("a transfer attack is untargeted: its labels are the surrogate's actions")
        self.inner, self.surrogate = inner, surrogate

    def surrogates(self) -> list[Policy]:
        return [self.surrogate]

    def perturb(self, policy: Policy, x: Tensor, mask: Tensor, target: Tensor | None) -> Perturbation:
        if (self.surrogate.n_actions, self.surrogate.obs_shape) != (policy.n_actions, policy.obs_shape):
            raise UserInputError(
                f"the surrogate {self.surrogate.name} ({self.surrogate.n_actions} actions) does not fit "
                f"{policy.name} ({policy.n_actions} actions)"
            )
        crafted = self.inner.perturb(self.surrogate.to(x.device), x, mask, None)
        with torch.no_grad():
            clean_logits = policy(x)
        return Perturbation(crafted.delta, clean_logits)
