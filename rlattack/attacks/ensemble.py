"""A per-step ensemble of attacks, as AutoAttack's worst case is per sample (Croce & Hein 2020).

Each attack of a set playing alone gives one return per attack, and the worst of those is a
worst case over attacks, not over observations: a step that one attack misses another may catch.
The ensemble tries its members on each observation in turn, in the order given. A sample keeps
the first member's result that changes its action, and only the samples still unchanged go on to the
next member; where no member changes the action, it keeps the result with the lowest margin
Z_a* - max_{a != a*} Z_a, the one closest to changing it. So it changes the action of every
observation that any member changes (though the action it leads to is the first member's, not
necessarily the most harmful one: put the strongest first), and a sample that changes early costs
no more than the members tried so far.

Shapes: `x` is `(N, *obs_shape)` in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from rlattack.attacks.base import Attack, Perturbation, margin
from rlattack.errors import UserInputError
from rlattack.policies import Policy


class Ensemble(Attack):
    """`members` (untargeted, the same budget, norm and surface) tried in the order given.

    With `eot` set, the members craft on the mean of the draws, as the ensemble itself does.
    """

    def __init__(self, members: Sequence[Attack]) -> None:
        if not members:
            raise UserInputError("an ensemble needs at least one attack")
        first = members[0]
        super().__init__(first.eps, first.norm, first.surface, first.quantize, first.bounds)
        for m in members:
            if m.targeted or (m.eps, m.norm, m.surface) != (first.eps, first.norm, first.surface):
                raise UserInputError("an ensemble's attacks are untargeted, with one eps, norm and surface")
        self.members = list(members)

    def surrogates(self) -> list[Policy]:
        return [p for m in self.members for p in m.surrogates()]

    def perturb(self, policy: Policy, x: Tensor, mask: Tensor, target: Tensor | None) -> Perturbation:
        with torch.no_grad():
            clean_logits = policy(x)
        label = clean_logits.argmax(dim=1)
        delta = torch.zeros_like(x)
        closest = torch.full((len(x),), torch.inf, dtype=clean_logits.dtype, device=x.device)
        queries = torch.zeros(len(x), dtype=torch.long, device=x.device)
        live = torch.arange(len(x), device=x.device)
        for member in self.members:
            result = member(policy, x[live])
            if result.queries is not None:
                queries[live] += result.queries.to(queries.device)
            gap = -margin(result.adv_logits, label[live])  # > 0 while the action is unchanged
            changed = result.adv_logits.argmax(dim=1) != label[live]
            keep = changed | (gap < closest[live])
            delta[live[keep]] = result.adv[keep] - x[live[keep]]
            closest[live[keep]] = torch.where(changed[keep], -torch.inf, gap[keep])
            live = live[~changed]
            if len(live) == 0:
                break
        return Perturbation(delta, clean_logits, queries=queries)
