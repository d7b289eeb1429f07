"""Checks that say when a robustness verdict cannot be trusted, after AutoAttack's `checks.py`
(Croce & Hein 2020) and Carlini et al. 2019's checklist, taken per step for policies.

Each check is a `Check` with a name, whether it passed and what it found. Three look at the
policy on states of its own clean play: gradients that are zero or not finite (shattered or
vanishing gradients), outputs that differ for the same input (stochastic gradients: attack with
EOT) and outputs that look like probabilities (their softmax saturates: attack the logits). Three
look at the games: a black-box attack beating every white-box one (the gradient is hiding
something), the largest eps leaving the return far above random play (an unbounded attack must
win) and the set's white-box attacks flipping fewer actions than ten times their steps with
restarts (they have not converged).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from scipy import stats
from torch import Tensor

from rlattack.attacks.base import margin
from rlattack.attacks.spec import AttackSpec
from rlattack.expectation import gradient_policy, is_randomized
from rlattack.policies import Policy

MASKED_SHARE = 0.05
"""a share of states above this with a zero or non-finite input gradient fails the check"""
NEAR_RANDOM = 0.25
"""at the largest eps the worst white-box return must lie within this share of the way from random
play to the clean return"""
UNCONVERGED = 0.10
"""the stronger attacks may flip at most this share of states more than the set's"""
MORE_STEPS, RESTARTS = 10, 2
"""the convergence check's attacks: ten times the steps, from this many random starts"""


@dataclass
class Check:
    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _unusable(grad: Tensor) -> Tensor:
    """(N,) whether a sample's gradient is all zero or has a non-finite entry."""
    flat = grad.flatten(1)
    return (flat == 0).all(dim=1) | ~torch.isfinite(flat).all(dim=1)


def _gradient(policy: Policy, x: Tensor, loss: str) -> Tensor:
    """The input gradient of `loss` at the clean greedy action; zeros where the outputs are
    detached from the input."""
    with torch.enable_grad():
        z = x.detach().requires_grad_(True)
        logits = policy(z)
        label = logits.detach().argmax(dim=1)
        if loss == "cross-entropy":
            value = F.cross_entropy(logits, label, reduction="sum")
        else:
            value = margin(logits, label).sum()
        if not value.requires_grad:
            return torch.zeros_like(x)
        (grad,) = torch.autograd.grad(value, z)
    return grad


def gradient_unusable(policy: Policy, x: Tensor) -> str | None:
    """Why no gradient attack can run on `policy` (outputs detached from the input, or a gradient
    that is not finite), None where they can."""
    with torch.enable_grad():
        z = x.detach().requires_grad_(True)
        if not policy(z).requires_grad:
            return "its outputs are detached from its input"
    if not torch.isfinite(_gradient(policy, x, "margin")).all():
        return "its input gradient is not finite (NaN or inf)"
    return None


def gradient_check(policy: Policy, x: Tensor) -> Check:
    """Shattered or vanishing gradients: the share of states whose input gradient of the
    cross-entropy or of the margin (both at the clean greedy action) is zero or not finite."""
    shares = {
        loss: float(_unusable(_gradient(policy, x, loss)).float().mean())
        for loss in ("cross-entropy", "margin")
    }
    worst = max(shares.values())
    detail = ", ".join(f"{name} {share:.0%}" for name, share in shares.items())
    return Check(
        "gradients",
        worst <= MASKED_SHARE,
        f"states whose input gradient is zero or not finite, of {len(x)}: {detail}"
        + ("" if worst <= MASKED_SHARE else "; gradient attacks are blind there: trust the black-box ones"),
    )


def randomness_check(policy: Policy, x: Tensor, eot: int) -> Check:
    """Stochastic outputs need EOT: passed when they are deterministic or averaged over draws."""
    randomized = is_randomized(policy, x)
    if not randomized:
        return Check("randomness", True, "the same input gives the same outputs")
    return Check(
        "randomness",
        eot > 1,
        f"the same input gives different outputs; attacks averaged {eot} draws (EOT)"
        + ("" if eot > 1 else ": use --eot N"),
    )


def probability_check(policy: Policy, x: Tensor) -> Check:
    """Outputs in [0, 1] that sum to 1 are probabilities: their softmax saturates, use logits."""
    with torch.no_grad():
        out = policy(x)
    rows = ((out >= 0) & (out <= 1)).all(dim=1) & ((out.sum(dim=1) - 1).abs() < 1e-4)
    share = float(rows.float().mean())
    return Check(
        "logits",
        share < 0.5,
        f"{share:.0%} of {len(x)} output rows look like probabilities"
        + ("" if share < 0.5 else ": give the policy's logits, before the softmax"),
    )


def half_width(summary: dict[str, Any]) -> float:
    """The 95% t-interval's half width of a mean return over games (0 for a single game)."""
    n, std = int(summary["episodes"]), float(summary["return_std"])
    if n < 2:
        return 0.0
    return float(stats.t.ppf(0.975, n - 1)) * std * math.sqrt(n / (n - 1)) / math.sqrt(n)


def black_box_check(rows: list[dict[str, Any]], white: tuple[str, ...], black: tuple[str, ...]) -> Check:
    """A black-box attack below every white-box one at some eps, their 95% intervals apart: the
    black-box attack's upper end under the lower end of the strongest white-box attack's."""
    if not any(n in row["attacks"] for row in rows for n in white):
        return Check("black-box", True, "not applicable: no white-box attack ran")
    beaten = []
    for row in rows:
        attacks = row["attacks"]
        whites = [attacks[n] for n in white if n in attacks]
        if not whites:
            continue
        best = min(whites, key=lambda s: s["return_mean"])
        for name in (n for n in black if n in attacks):
            s = attacks[name]
            if s["return_mean"] + half_width(s) < best["return_mean"] - half_width(best):
                beaten.append(
                    f"{name} {s['return_mean']:.1f} < {best['return_mean']:.1f} at {row['eps'] * 255:.3g}/255"
                )
    if not beaten:
        return Check(
            "black-box", True, "no black-box attack beats every white-box one beyond their 95% intervals"
        )
    return Check(
        "black-box",
        False,
        "black-box beats every white-box attack: " + "; ".join(beaten) + " (gradients mislead)",
    )


def large_eps_check(eps: float, white_return: float, clean: float, random: float) -> Check:
    """At a large eps a white-box attack must take the return near random play."""
    near = random + NEAR_RANDOM * (clean - random)
    ok = white_return <= near or clean <= random
    return Check(
        "large eps",
        ok,
        f"white-box worst case at {eps * 255:.3g}/255: {white_return:.1f} (random play {random:.1f}"
        + ("" if ok else f", near is <= {near:.1f}: an unbounded attack must win; gradients are masked")
        + ")",
    )


def convergence_check(
    policy: Policy, x: Tensor, eps: float, specs: dict[str, AttackSpec], seed: int, eot: int = 1
) -> Check:
    """The states the set's white-box attacks change, against the same attacks with ten times
    the steps from several random starts: more changes mean the set's have not converged. A
    randomised policy is judged on the mean of `eot` draws, so that its own noise is no change."""
    judge = gradient_policy(policy, eot)
    with torch.no_grad():
        clean = judge(x).argmax(dim=1)

    def changed(spec: AttackSpec, seed: int) -> Tensor:
        attack = spec.build(seed)
        assert attack is not None
        adv = attack(policy, x).adv
        with torch.no_grad():
            return (judge(adv).argmax(dim=1) != clean).cpu()

    ours = torch.zeros(len(x), dtype=torch.bool)
    stronger = torch.zeros(len(x), dtype=torch.bool)
    for spec in specs.values():
        spec = spec.with_eps(eps)
        ours |= changed(spec, seed)
        longer = spec.model_copy(update={"steps": spec.steps * MORE_STEPS})
        for restart in range(RESTARTS):
            stronger |= changed(longer, seed + 1 + restart)
    ours_rate, stronger_rate = float(ours.float().mean()), float((stronger | ours).float().mean())
    gap = stronger_rate - ours_rate
    return Check(
        "convergence",
        gap <= UNCONVERGED,
        f"at {eps * 255:.3g}/255 on {len(x)} states the set's white-box attacks change {ours_rate:.0%} "
        f"of actions, {MORE_STEPS}x their steps with {RESTARTS} restarts {stronger_rate:.0%}"
        + ("" if gap <= UNCONVERGED else ": the set's attacks have not converged; add steps"),
    )
