"""Jacobian-based Saliency Map Attack (Papernot et al. 2016, "The Limitations of Deep Learning in
Adversarial Settings"), batched for policies as in Behzadan & Munir 2017.

Targeted: each iteration changes the pair of features (p, q) with the best saliency towards the
target action t. With alpha = dZ_t/dx and beta = d(sum_{j != t} Z_j)/dx (Z the logits, or the
Q-values of a DQN), an increasing attack (theta > 0) admits pairs with alpha_pq > 0 and
beta_pq < 0 and maximises alpha_pq * |beta_pq|; a decreasing one (theta < 0) mirrors the signs.
Both pair features move by theta and are clipped to [0, 1]; a feature that reaches its bound
leaves the search domain. A sample stops when the policy takes the target (decided on logits),
when no admissible pair is left (failure), or when one more pair would change more than
floor(gamma * d) features (d = perturbable features).

Cost per iteration: one forward and two vector-Jacobian products (the target logit, and the sum
of all logits: others = sum - target), on the samples still running; finished samples cost
nothing more. Memory does not grow with d^2:

- `search="topk"` (default, an approximation): the pair is searched among the union of the
  top-k features by alpha, by -beta and by alpha - beta (in the sign convention of theta), at most
  3k features and (3k)^2 pairs per sample. When 3k covers the whole domain it is the exhaustive
  search; on smaller k it can miss the best pair (how often is measured by
  `benchmarks/jsma_vs_art.py`, which prints the rate).
- `search="exhaustive"`: every pair, scanned in row chunks with a running maximum.

Shapes: `x` is `(N, *obs_shape)` in [0, 1]; targets are `(N,)` actions (default rule: the
least-likely action). The result's `iterations` and `l0` say what each sample cost.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rlattack.attacks.base import Attack, Perturbation, Surface, TargetRule, input_gradient
from rlattack.attacks.targets import least_likely
from rlattack.errors import UserInputError
from rlattack.policies import Policy

NO_PAIR = -1


def _best_among(a: Tensor, b: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
    """Best admissible pair among candidate features `idx` (B, C): (score, (B, 2) features)."""
    ca, cb = a.gather(1, idx), b.gather(1, idx)
    pair_a = ca[:, :, None] + ca[:, None, :]
    pair_b = cb[:, :, None] + cb[:, None, :]
    valid = (pair_a > 0) & (pair_b < 0) & (idx[:, :, None] != idx[:, None, :])
    score = torch.where(valid, pair_a * -pair_b, -math.inf).flatten(1)
    best, flat = score.max(dim=1)
    c = idx.shape[1]
    return best, torch.stack([idx.gather(1, flat[:, None] // c), idx.gather(1, flat[:, None] % c)], 1)[..., 0]


def _topk(a: Tensor, b: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The best pair among the top-k features by alpha, by -beta and by alpha - beta."""
    k = min(k, a.shape[1])
    idx = torch.cat(
        [a.topk(k, dim=1).indices, b.topk(k, dim=1, largest=False).indices, (a - b).topk(k, dim=1).indices],
        dim=1,
    )
    return _best_among(a, b, idx)


def _exhaustive(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Every pair, in row chunks of ~16M pair scores with a running maximum."""
    n, f = a.shape
    best = torch.full((n,), -math.inf, dtype=a.dtype, device=a.device)
    pairs = torch.zeros(n, 2, dtype=torch.long, device=a.device)
    rows = max(1, 2**24 // max(n * f, 1))
    everything = torch.arange(f, device=a.device)
    for start in range(0, f, rows):
        p = everything[start : start + rows]
        pair_a = a[:, p, None] + a[:, None, :]
        pair_b = b[:, p, None] + b[:, None, :]
        valid = (pair_a > 0) & (pair_b < 0) & (p[None, :, None] != everything[None, None, :])
        chunk_best, flat = torch.where(valid, pair_a * -pair_b, -math.inf).flatten(1).max(dim=1)
        better = chunk_best > best
        best = torch.where(better, chunk_best, best)
        found = torch.stack([p[flat // f], flat % f], dim=1)  # integer division: exact decoding
        pairs = torch.where(better[:, None], found, pairs)
    return best, pairs


def select_pairs(a: Tensor, b: Tensor, domain: Tensor, search: str = "topk", k: int = 32) -> Tensor:
    """The pair of features to change per sample, (B, 2) indices, or NO_PAIR where none is admissible.

    `a` and `b` (B, F) are alpha and beta multiplied by sign(theta); admissible pairs have
    a_pq > 0 and b_pq < 0, both features in `domain` (B, F) and p != q; the best maximises
    a_pq * -b_pq. The top-k search retries samples it finds no pair for with 8k candidates.
    """
    # Features outside the domain get alpha = -inf, beta = +inf: no ranking picks them and no
    # pair with them is admissible, with no mask carried through the search.
    a = a.masked_fill(~domain, -math.inf)
    b = b.masked_fill(~domain, math.inf)
    if search == "exhaustive":
        best, pairs = _exhaustive(a, b)
    elif search == "topk":
        best, pairs = _topk(a, b, k)
        stuck = torch.isinf(best).nonzero()[:, 0]
        if len(stuck):
            best[stuck], pairs[stuck] = _topk(a[stuck], b[stuck], 8 * k)
    else:
        raise UserInputError(f"unknown JSMA search {search!r}; use topk or exhaustive")
    return torch.where(torch.isfinite(best)[:, None], pairs, NO_PAIR)


class JSMA(Attack):
    """Targeted saliency-map attack; see the module docstring.

    Args:
        theta: change per selected feature and iteration, on the [0, 1] scale (negative decreases).
        gamma: largest fraction of the perturbable features that may change.
        target: rule choosing target actions when none are passed (default: least likely).
        search: "topk" (approximate, fast) or "exhaustive" (exact, chunked).
        k: candidates per ranking for the top-k search.
    """

    def __init__(
        self,
        theta: float = 1.0,
        gamma: float = 0.1,
        target: TargetRule | None = least_likely,
        surface: Surface = "stack",
        quantize: bool = False,
        bounds: tuple[float, float] = (0.0, 1.0),
        search: str = "topk",
        k: int = 32,
    ) -> None:
        if not math.isfinite(theta) or theta == 0:
            raise UserInputError(f"JSMA theta must be a non-zero number, got {theta!r}")
        if not 0 < gamma <= 1:
            raise UserInputError(f"JSMA gamma must be in (0, 1], got {gamma!r}")
        if search not in ("topk", "exhaustive"):
            raise UserInputError(f"unknown JSMA search {search!r}; use topk or exhaustive")
        super().__init__(abs(theta), "inf", surface, quantize, bounds, targeted=True, target=target)
        self.theta, self.gamma, self.search, self.k = theta, gamma, search, k

    def perturb(self, policy: Policy, x: Tensor, mask: Tensor, target: Tensor | None) -> Perturbation:
        assert target is not None  # the base resolves the rule
        n = len(x)
        lo, hi = self.bounds
        sign = 1.0 if self.theta > 0 else -1.0
        allowed = mask.expand_as(x).flatten(1) > 0
        d = int(allowed[0].sum())
        budget = math.floor(self.gamma * d)
        adv = x.detach().clone().flatten(1)
        domain = allowed & ((adv < hi) if sign > 0 else (adv > lo))
        changed = torch.zeros_like(domain)
        n_changed = torch.zeros(n, dtype=torch.long, device=x.device)
        iterations = torch.zeros(n, dtype=torch.long, device=x.device)
        clean_logits = None
        running = torch.arange(n, device=x.device)
        while len(running):
            everyone = len(running) == n
            with torch.enable_grad():
                xr = (adv if everyone else adv[running]).view(-1, *x.shape[1:]).requires_grad_(True)
                logits = policy(xr)
                if clean_logits is None:
                    clean_logits = logits.detach()
                t = target[running]
                keep = logits.detach().argmax(dim=1) != t
                if not keep.any():
                    break
                target_logit = logits.gather(1, t[:, None]).sum()
                alpha = input_gradient(policy, target_logit, xr, retain_graph=True)
                total = input_gradient(policy, logits.sum(), xr)
            alpha, beta = alpha.flatten(1), (total - alpha).flatten(1)
            if not keep.all():
                alpha, beta, running = alpha[keep], beta[keep], running[keep]
            if sign < 0:
                alpha, beta = -alpha, -beta
            pairs = select_pairs(alpha, beta, domain[running], self.search, self.k)
            rows = running[:, None].expand(-1, 2)
            safe = pairs.clamp_min(0)
            new_features = (~changed[rows, safe]).sum(dim=1)
            go = (pairs[:, 0] != NO_PAIR) & (n_changed[running] + new_features <= budget)
            running, rows, safe, new_features = running[go], rows[go], safe[go], new_features[go]
            adv[rows, safe] = (adv[rows, safe] + self.theta).clamp(lo, hi)
            changed[rows, safe] = True
            domain[rows, safe] &= (adv[rows, safe] < hi) if sign > 0 else (adv[rows, safe] > lo)
            n_changed[running] += new_features
            iterations[running] += 1
        assert clean_logits is not None
        return Perturbation(adv.view_as(x) - x, clean_logits, iterations)
