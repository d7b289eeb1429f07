"""Fast Gradient Sign Method and its L2 / L1 variants, as used on policies by Huang et al. 2017.

Goodfellow et al. 2015, "Explaining and Harnessing Adversarial Examples"; Huang et al. 2017,
"Adversarial Attacks on Neural Network Policies". One gradient of the cross-entropy between the
policy's softmax and its clean greedy action (untargeted) or a chosen action (targeted):

- L-inf: x + eps * sign(g)
- L2:    x + eps * sqrt(d) * g / ||g||_2
- L1:    a total change of eps * d on the features of largest |g|

Shapes: `x` is `(N, *obs_shape)` in [0, 1]; `target` is `(N,)` action indices.
"""

from __future__ import annotations

from torch import Tensor

from rlattack.attacks.base import Attack, Perturbation, loss_gradient, norm_step
from rlattack.policies import Policy


class FGSM(Attack):
    """One-step gradient attack; targeted (`targeted=True` or a `target` rule) pulls towards a target."""

    def perturb(self, policy: Policy, x: Tensor, mask: Tensor, target: Tensor | None) -> Perturbation:
        grad, logits = loss_gradient(policy, x, target, targeted=target is not None)
        return Perturbation(norm_step(grad, x, self.eps, self.norm, mask), logits)
