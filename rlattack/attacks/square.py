"""Square Attack (Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box adversarial
attack via random search") in L-inf and L2: gradient-free, it only reads the policy's outputs.

Random search on the margin Z_y - max_{i != y} Z_i of the clean action y (Q-values or logits): each
query changes one random square window of the perturbation and is kept if it lowers the margin.
The window's side shrinks with the queries spent, on the paper's schedule (p_init = 0.8 in L-inf,
0.3 in L2, halved at 10, 50, 200, ... of 10,000 queries, scaled to the budget). In L-inf the window
gets +-eps per channel (channels are the stacked frames); in L2 the paper's eta (two opposite
halves of nested rings, randomly transposed, on an odd window of at least 3 pixels) moves budget
from a second window into the first, at the full radius. It starts from vertical stripes of +-eps
(L-inf) or the same stripes scaled to the L2 radius (the paper starts L2 from a grid of bumps;
stripes keep one init for both norms).

Because it needs no gradient, a policy that hides its gradient (a rounding step, saturated
outputs, NaN gradients) cannot stop it. A sample stops querying as soon as its action has changed,
so an agent that is easy to fool costs few queries; `AttackResult.queries` counts them.

Each sample draws its windows and signs from its own generator, keyed by `seed` and its values, so a
batch gives what its samples give one by one.

Shapes: `x` is `(N, C, H, W)` in [0, 1] (channels are frames); the budget is `queries` per sample.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rlattack.attacks.base import (
    Attack,
    Norm,
    Perturbation,
    Surface,
    ball_radius,
    clip_delta,
    keyed_generators,
    margin,
)
from rlattack.errors import UserInputError
from rlattack.policies import Policy

P_INIT = {"inf": 0.8, "2": 0.3}
"""the share of the frame the first window covers (the paper's ImageNet choices)"""
HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
"""at these of 10,000 queries the window's area is halved (the paper's schedule)"""


def window_share(p_init: float, query: int, budget: int) -> float:
    """The share of the frame the window covers at `query` of `budget` (scaled to 10,000)."""
    at = int(query / budget * 10_000)
    return p_init / 2 ** sum(at > h for h in HALVINGS)


def _rings(rows: int, cols: int) -> Tensor:
    """(rows, cols) nested rectangles around the centre, the k-th 1/(k+1)^2 deep, unit L2 norm."""
    grid = torch.zeros(rows, cols)
    top, left = rows // 2, cols // 2
    for k in range(max(rows // 2 + 1, cols // 2 + 1)):
        grid[
            max(top - k, 0) : min(top - k + 2 * k + 1, rows),
            max(left - k, 0) : min(left - k + 2 * k + 1, cols),
        ] += 1.0 / (k + 1) ** 2
    return grid / grid.norm()


def bump(s: int, transpose: bool = False) -> Tensor:
    """(s, s) the paper's eta: rings on the upper half, the same rings negated on the lower, unit
    L2 norm, transposed at random (the draw is the caller's)."""
    grid = torch.cat([_rings(s // 2, s), -_rings(s - s // 2, s)])
    grid = grid / grid.norm()
    return grid.T if transpose else grid


class Square(Attack):
    """Score-based random search for an action change within the eps-ball.

    Args:
        eps: budget on the [0, 1] scale (L-inf radius eps, L2 radius eps * sqrt(d)).
        norm: "inf" or "2".
        queries: most forward passes per sample and step (the start counts as one).
        seed: keys each sample's draws.

    Example:
        >>> import torch
        >>> from rlattack.policies import Policy
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 6 * 6, 3))
        >>> policy = Policy(net.double(), n_actions=3, obs_shape=(2, 6, 6), input_scale=1.0)
        >>> result = Square(eps=0.05, queries=20)(policy, torch.full((4, 2, 6, 6), 0.5, dtype=torch.float64))
        >>> bool((result.linf <= 0.05 + 1e-12).all()), int(result.queries.max()) <= 20
        (True, True)
    """

    def __init__(
        self,
        eps: float,
        norm: Norm = "inf",
        queries: int = 100,
        surface: Surface = "stack",
        quantize: bool = False,
        bounds: tuple[float, float] | None = (0.0, 1.0),
        seed: int = 0,
    ) -> None:
        super().__init__(eps, norm, surface, quantize, bounds)
        if norm not in ("inf", "2"):
            raise UserInputError(f"Square supports norms inf and 2, not {norm!r}")
        if queries < 1:
            raise UserInputError(f"Square needs at least one query, got {queries}")
        self.queries, self.seed = queries, seed

    def perturb(self, policy: Policy, x: Tensor, mask: Tensor, target: Tensor | None) -> Perturbation:
        if x.ndim != 4:
            raise UserInputError(
                f"Square searches square windows of (N, C, H, W) frames, got {tuple(x.shape)}"
            )
        n, c, h, w = x.shape
        radius = ball_radius(x, self.eps, self.norm, mask)
        generators = keyed_generators(x, self.seed)
        # every draw of a sample comes from its own generator, in a fixed order
        stripes = torch.stack([torch.randint(0, 2, (c, 1, w), generator=g) for g in generators])
        positions = torch.stack([torch.rand(self.queries, 5, generator=g) for g in generators])
        signs = torch.stack([torch.randint(0, 2, (self.queries, c, 1, 1), generator=g) for g in generators])
        stripes, positions = stripes.to(x), positions.to(x.device)
        signs = signs.to(x) * 2 - 1
        delta = self.eps * (stripes * 2 - 1).expand(n, c, h, w) * mask
        if self.norm == "2":
            delta = delta * radius / delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        delta = clip_delta(x, delta, self.bounds)
        with torch.no_grad():
            clean_logits = policy(x)
            label = clean_logits.argmax(dim=1)
            logits = policy(x + delta)
            best = margin(logits, label).neg()  # Z_y - max others: lower is closer to a change
            fooled = logits.argmax(dim=1) != label
        spent = torch.ones(n, dtype=torch.long, device=x.device)
        rows = torch.arange(h, device=x.device).view(1, 1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, 1, w)
        for q in range(1, self.queries):
            live = torch.nonzero(~fooled).flatten()
            if len(live) == 0:
                break
            share = window_share(P_INIT[self.norm], q, self.queries)
            s = max(round(math.sqrt(share * h * w)), 1)
            if self.norm == "2":  # the paper's L2 windows: odd, at least 3 pixels a side
                s = max(s, 3) + (max(s, 3) % 2 == 0)
            s = min(s, h, w)
            pos = positions[live, q]
            top = (pos[:, 0] * (h - s + 1)).long().view(-1, 1, 1, 1)
            left = (pos[:, 1] * (w - s + 1)).long().view(-1, 1, 1, 1)
            window = (rows >= top) & (rows < top + s) & (cols >= left) & (cols < left + s)
            old = delta[live]
            if self.norm == "inf":
                new = torch.where(window, self.eps * signs[live, q] * mask, old)
            else:
                top2 = (pos[:, 2] * (h - s + 1)).long().view(-1, 1, 1, 1)
                left2 = (pos[:, 3] * (w - s + 1)).long().view(-1, 1, 1, 1)
                window2 = (rows >= top2) & (rows < top2 + s) & (cols >= left2) & (cols < left2 + s)
                flip = (pos[:, 4] > 0.5).view(-1, 1, 1, 1)
                new = self._l2_step(
                    x[live], old, window, window2 & ~window, signs[live, q], s, top, left, flip, mask
                )
            new = clip_delta(x[live], new, self.bounds)
            with torch.no_grad():
                logits = policy(x[live] + new)
            value = margin(logits, label[live]).neg()
            spent[live] += 1
            now = logits.argmax(dim=1) != label[live]
            better = (value < best[live]) | now
            fooled[live] = now
            delta[live] = torch.where(better.view(-1, 1, 1, 1), new, old)
            best[live] = torch.where(better, value, best[live])
        return Perturbation(delta, clean_logits, queries=spent)

    def _l2_step(
        self,
        x: Tensor,
        old: Tensor,
        window: Tensor,
        window2: Tensor,
        sign: Tensor,
        s: int,
        top: Tensor,
        left: Tensor,
        flip: Tensor,
        mask: Tensor,
    ) -> Tensor:
        """The paper's L2 update: the first window gets a signed bump plus its old content, carrying
        its own and the second window's energy and whatever the ball has left; the second is
        emptied; the whole is rescaled to the radius."""
        h, w = x.shape[2:]
        radius = ball_radius(x, self.eps, "2", mask)
        r = (torch.arange(h, device=x.device).view(1, 1, h, 1) - top).clamp(0, s - 1)
        k = (torch.arange(w, device=x.device).view(1, 1, 1, w) - left).clamp(0, s - 1)
        pattern = torch.where(flip, bump(s, transpose=True).to(x)[r, k], bump(s).to(x)[r, k]) * window
        in_window = old * window
        energy = (old * (window | window2)).pow(2).sum(dim=(2, 3), keepdim=True)
        left_over = (radius**2 - old.pow(2).sum(dim=(1, 2, 3), keepdim=True)).clamp_min(0) / old.shape[1]
        own = in_window / in_window.pow(2).sum(dim=(2, 3), keepdim=True).sqrt().clamp_min(1e-10)
        fresh = (pattern * sign + own) * window
        fresh = fresh / fresh.pow(2).sum(dim=(2, 3), keepdim=True).sqrt().clamp_min(1e-12)
        fresh = fresh * (left_over + energy).sqrt()
        new = torch.where(window, fresh, torch.where(window2, torch.zeros_like(old), old)) * mask
        length = new.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        return new * (radius / length)
