"""What every attack shares: input checks, the threat surface, clipping, rounding, norms.

Units follow the papers: observations are floats in [0, 1] (pixels / 255) and `eps` is on that
scale, so `eps=1/255` is one gray level. The reported norms are those of the perturbation that
reaches the policy, after clipping and (with `quantize=True`) rounding to uint8 frames; L0
counts only features that moved by more than float rounding (`moved`).
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from rlattack.errors import UserInputError
from rlattack.expectation import gradient_policy
from rlattack.policies import Policy

Norm = Literal["inf", "2", "1"]
Surface = Literal["stack", "frame"]
Loss = Literal["ce", "margin"]
NORMS: tuple[str, ...] = get_args(Norm)
SURFACES: tuple[str, ...] = get_args(Surface)
LOSSES: tuple[str, ...] = ("ce", "margin")
TargetRule = Callable[[Tensor, Tensor], Tensor]
"""Maps observations (N, ...) and their clean logits (N, A) to target actions (N,)."""


@dataclass
class AttackResult:
    """A batch of attacked observations and what they did to the policy; every field has N rows."""

    adv: Tensor
    """(N, *obs_shape) adversarial observations, floats in [0, 1] unless unbounded"""
    clean_logits: Tensor
    """(N, n_actions) the policy's logits on the clean observation"""
    adv_logits: Tensor
    """(N, n_actions) its logits on the adversarial one (a sampling agent draws from both)"""
    linf: Tensor
    """(N,) effective L-inf norm of adv - x"""
    l2: Tensor
    """(N,) effective L2 norm of adv - x"""
    l0: Tensor
    """(N,) number of features that changed (by more than float rounding: `moved`)"""
    target: Tensor | None = None
    """(N,) the actions a targeted attack aimed at"""
    iterations: Tensor | None = None
    """(N,) iterations spent per sample, for attacks that stop early (JSMA)"""
    queries: Tensor | None = None
    """(N,) forward passes spent per sample, for score-based attacks (Square)"""

    @property
    def clean_action(self) -> Tensor:
        """(N,) greedy action on the clean observation."""
        return self.clean_logits.argmax(dim=1)

    @property
    def adv_action(self) -> Tensor:
        """(N,) greedy action on the adversarial observation."""
        return self.adv_logits.argmax(dim=1)

    @property
    def changed(self) -> Tensor:
        """(N,) whether the attack changed the greedy action."""
        return self.adv_action != self.clean_action

    @property
    def success(self) -> Tensor:
        """(N,) targeted: the policy now takes the target; untargeted: its action changed."""
        return self.changed if self.target is None else self.adv_action == self.target


@dataclass
class Perturbation:
    """What a subclass's `perturb` returns: the change before clipping, and what it learned."""

    delta: Tensor
    """(N, *obs_shape) perturbation, before clipping to the bounds"""
    clean_logits: Tensor
    """(N, n_actions) logits of the clean observation"""
    iterations: Tensor | None = None
    queries: Tensor | None = None


def check_eps(eps: float) -> float:
    """eps must be a finite number >= 0."""
    if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise UserInputError(f"eps must be a finite number >= 0, got {eps!r}")
    return float(eps)


def surface_mask(x: Tensor, surface: Surface) -> Tensor:
    """1 on the features the attacker may change, broadcastable to `x`.

    `frame` allows only the newest frame of a `(N, C, H, W)` stack (the last channel).
    """
    if surface == "stack":
        return torch.ones((1,) * x.ndim, dtype=x.dtype, device=x.device)
    if x.ndim != 4:
        raise UserInputError(f"surface 'frame' needs (N, C, H, W) stacks, got shape {tuple(x.shape)}")
    mask = torch.zeros(1, x.shape[1], 1, 1, dtype=x.dtype, device=x.device)
    mask[:, -1] = 1
    return mask


def check_loss(loss: str) -> Loss:
    """`loss` must be one of `LOSSES`."""
    if loss not in LOSSES:
        raise UserInputError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
    return loss  # type: ignore[return-value]


def check_iterative(name: str, norm: str, steps: int, step_size: float | None) -> None:
    """What PGD, MAD and Momentum share: a ball they can project onto (L-inf or L2), at least one
    step, and a step size >= 0 where one is given."""
    if norm not in ("inf", "2"):
        raise UserInputError(f"{name} supports norms inf and 2, not {norm!r}")
    if steps < 1:
        raise UserInputError(f"{name} needs at least one step, got {steps}")
    if step_size is not None and not step_size >= 0:
        raise UserInputError(f"{name}'s step size must be >= 0, got {step_size}")


def margin(logits: Tensor, label: Tensor) -> Tensor:
    """(N,) max_{a != label} Z_a - Z_label (Carlini & Wagner 2017's f6 without its floor): > 0
    exactly when the greedy action is not `label`. Its gradient is that of two logits, whatever
    their scale, so it never saturates the way a softmax does."""
    own = logits.gather(1, label.view(-1, 1)).squeeze(1)
    others = logits.masked_fill(F.one_hot(label, logits.shape[1]).bool(), -math.inf)
    return others.amax(dim=1) - own


def input_gradient(policy: Policy, value: Tensor, x: Tensor, retain_graph: bool = False) -> Tensor:
    """d value / d x, refused in one line where no gradient attack can use it: outputs detached
    from the input (nothing to follow), or a gradient that is NaN or infinite (a step along it
    would turn the observation into NaN, and the attack would report nothing changed). Square and
    transfer attacks need no gradient of the policy."""
    if not value.requires_grad:
        raise UserInputError(
            f"{policy.name}'s outputs do not depend on its input through autograd (detached): "
            "gradient attacks cannot run on it; use square or a transfer attack (--surrogate)"
        )
    (grad,) = torch.autograd.grad(value, x, retain_graph=retain_graph)
    if not torch.isfinite(grad).all():
        bad = int((~torch.isfinite(grad.flatten(1))).any(dim=1).sum())
        raise UserInputError(
            f"{policy.name}'s input gradient is not finite (NaN or inf) on {bad} of {len(grad)} "
            "observations: gradient attacks cannot follow it; use square or a transfer attack (--surrogate)"
        )
    return grad


def loss_gradient(
    policy: Policy, x: Tensor, label: Tensor | None = None, targeted: bool = False, loss: Loss = "ce"
) -> tuple[Tensor, Tensor]:
    """The direction that hurts the policy most, and the logits of the same forward pass.

    `loss="ce"`: untargeted, ascend the cross-entropy between softmax(logits) and `label`, by
    default the greedy action of this very forward pass (Huang et al. 2017; for DQN the logits
    are Q-values); targeted, descend it towards `label`. `loss="margin"`: untargeted, ascend
    max_{a != label} Z_a - Z_label; targeted, ascend its mirror Z_label - max_{a != label} Z_a.
    Cross-entropy on raw Q-values depends on their scale (a large gap saturates the softmax and its
    gradient underflows to 0); a margin does not. `reduction="sum"` keeps samples independent of
    the batch.
    """
    check_loss(loss)
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        logits = policy(x)
        if label is None:
            label = logits.detach().argmax(dim=1)
        if loss == "ce":
            value = F.cross_entropy(logits, label, reduction="sum")
        else:
            value = margin(logits, label).sum()
        grad = input_gradient(policy, -value if targeted else value, x)
    return grad.detach(), logits.detach()


def norm_step(g: Tensor, x: Tensor, eps: float, norm: Norm, mask: Tensor) -> Tensor:
    """The perturbation of budget `eps` along direction `g`, on the features `mask` allows.

    d is the number of changeable features per sample. L-inf: eps * sign(g). L2: norm
    eps * sqrt(d) along g. L1: a total change of eps * d spent on the largest-|g| features, each
    moved as far as [0, 1] lets it go in the sign of its gradient, so no budget is lost to
    clipping; the budget is met exactly whenever that much room exists.
    """
    g = g * mask
    flat = g.flatten(1)
    d = float(mask.expand_as(x[:1]).sum())
    if norm == "inf":
        return eps * g.sign()
    if norm == "2":
        length = flat.norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (g.ndim - 1)))
        return eps * math.sqrt(d) * g / length * (length > 1e-12)
    if norm == "1":
        room = torch.where(flat > 0, 1 - x.flatten(1), x.flatten(1)).clamp_min(0)
        room = room * (flat != 0)
        order = flat.abs().argsort(dim=1, descending=True)
        room_sorted = room.gather(1, order)
        spent_before = room_sorted.cumsum(dim=1) - room_sorted
        take = (eps * d - spent_before).clamp(min=0).minimum(room_sorted)
        amount = torch.zeros_like(flat).scatter_(1, order, take)
        return (amount * flat.sign()).view_as(g)
    raise UserInputError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")


def ball_radius(x: Tensor, eps: float, norm: Norm, mask: Tensor) -> float:
    """The radius of the eps-ball in `norm_step`'s units: eps (L-inf), eps * sqrt(d) (L2)."""
    if norm == "inf":
        return eps
    if norm == "2":
        return eps * math.sqrt(float(mask.expand_as(x[:1]).sum()))
    raise UserInputError(f"no projection onto the L{norm} ball; iterative attacks take norms inf and 2")


def project(delta: Tensor, radius: float, norm: Norm) -> Tensor:
    """The nearest point of the L-inf or L2 ball of `radius` around 0, per sample."""
    if norm == "inf":
        return delta.clamp(-radius, radius)
    length = delta.flatten(1).norm(dim=1).view(-1, *([1] * (delta.ndim - 1)))
    return delta * (radius / length.clamp_min(1e-12)).clamp(max=1.0)


ROUNDING_ULPS = 4
"""How far (in units of the last place, at 1.0 or at the feature's own magnitude if larger) a
feature may sit from its clean value and still count as unmoved in L0."""


def moved(x: Tensor, adv: Tensor) -> Tensor:
    """Where `adv` really moved away from `x`: by more than `ROUNDING_ULPS` ulps.

    Steps that cancel (PGD's +a then -a, a projection back to the clean value) leave `x + delta`
    an ulp or so off `x`: counted, they added about 1,200 of 28,224 features to PGD's L0 at
    1/255 on pong-dqn.
    The tolerance is 4.8e-7 in float32 (1/8000 of a gray level) and 8.9e-16 in float64: above
    rounding residues, far below any change a policy could notice.
    """
    scale = torch.maximum(x.abs(), torch.ones_like(x))
    return (adv - x).abs() > ROUNDING_ULPS * torch.finfo(x.dtype).eps * scale


def clip_delta(x: Tensor, delta: Tensor, bounds: tuple[float, float] | None) -> Tensor:
    """`delta` shortened so that x + delta stays inside `bounds` (None: unchanged)."""
    return delta if bounds is None else (x + delta).clamp(*bounds) - x


KEY_STRIDE = 61
"""A sample's key hashes every 61st of its values (463 of Pong's 28,224): two states the env
gives differ in far more places, and hashing all of them cost 5x the draws at K = 256."""


def keyed_generators(x: Tensor, seed: int, device: torch.device | None = None) -> list[torch.Generator]:
    """One generator per sample (on `device`, default the CPU), keyed by `seed` and the sample's
    values: a sample draws the same numbers alone as in any batch (batch-equals-samples)."""
    values = x.detach().flatten(1)[:, ::KEY_STRIDE].cpu()
    generators = []
    for sample in values:
        key = hashlib.blake2b(str(seed).encode(), digest_size=8)
        key.update(sample.numpy().tobytes())
        generator = torch.Generator(device=device or "cpu")
        generators.append(generator.manual_seed(int.from_bytes(key.digest(), "little") >> 1))
    return generators


def random_start(x: Tensor, mask: Tensor, eps: float, norm: Norm, seed: int) -> Tensor:
    """A random point of the eps-ball around each sample: uniform in the L-inf cube, or a uniform
    direction at a uniformly random fraction of the L2 radius; 0 where `mask` is 0.

    Each sample draws from its own generator, keyed by `seed` and the sample's values, so a sample
    gets the same start alone as in any batch, and in every call (the batch-equals-samples
    property); another `seed` gives other starts. Drawn on `x`'s device.
    """
    generators = keyed_generators(x, seed, x.device)
    shape, kind = x.shape[1:], {"dtype": x.dtype, "device": x.device}
    u = torch.stack([torch.rand(shape, generator=g, **kind) for g in generators]) * 2 - 1
    if norm == "inf":
        return eps * u * mask
    if norm == "2":
        fraction = torch.cat([torch.rand(1, generator=g, **kind) for g in generators])
        return norm_step(u, x, eps, "2", mask) * fraction.view(-1, *([1] * (x.ndim - 1)))
    raise UserInputError(f"no random start in the L{norm} ball; choose inf or 2")


class Attack(ABC):
    """An observation attack: subclasses say how to perturb, this class checks and finishes.

    Args:
        eps: budget on the [0, 1] scale (see `norm_step` for what it means per norm).
        norm: "inf", "2" or "1".
        surface: "stack" (the whole stacked observation) or "frame" (the newest frame only).
        quantize: round the result to valid uint8 frames (k / 255); norms are measured after.
        bounds: the valid input range, (0, 1) for images; None leaves inputs unclipped (for
            non-image models and the textbook examples).
        targeted: aim at target actions instead of away from the clean action.
        target: the rule that picks each sample's target action when the caller passes none
            (see `rlattack.attacks.targets`); giving one makes the attack targeted.

    `eot` (an attribute, 1 by default) crafts on the mean of that many draws of a randomised
    policy's logits (`rlattack.expectation`); the result is judged on the policy itself.
    """

    eot: int = 1

    def __init__(
        self,
        eps: float,
        norm: Norm = "inf",
        surface: Surface = "stack",
        quantize: bool = False,
        bounds: tuple[float, float] | None = (0.0, 1.0),
        targeted: bool = False,
        target: TargetRule | None = None,
    ) -> None:
        self.eps = check_eps(eps)
        if norm not in NORMS:
            raise UserInputError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")
        if surface not in SURFACES:
            raise UserInputError(f"unknown surface {surface!r}; choose one of {', '.join(SURFACES)}")
        self.norm = norm
        self.surface = surface
        self.quantize = quantize
        self.bounds = bounds
        self.target_rule = target
        self.targeted = targeted or target is not None

    def surrogates(self) -> list[Policy]:
        """The other policies this attack crafts on (a transfer attack's), to check against the game."""
        return []

    @abstractmethod
    def perturb(self, policy: Policy, x: Tensor, mask: Tensor, target: Tensor | None) -> Perturbation:
        """Return the raw perturbation (before clipping) and the clean logits."""

    def __call__(self, policy: Policy, x: Tensor, target: Tensor | None = None) -> AttackResult:
        """Attack a batch `x` of shape `(N, *policy.obs_shape)`.

        `target` (N,) overrides the target rule of a targeted attack; an untargeted one takes none.
        """
        if x.ndim < 2 or tuple(x.shape[1:]) != policy.obs_shape:
            raise UserInputError(
                f"observations of shape {tuple(x.shape)} do not fit {policy.name}, "
                f"which expects (N, {', '.join(map(str, policy.obs_shape))})"
            )
        if not x.is_floating_point():
            raise UserInputError("attacks take float observations in [0, 1]; divide uint8 by 255")
        if target is not None and not self.targeted:
            raise UserInputError("this attack is untargeted: build it with targeted=True or a target rule")
        if self.targeted and target is None:
            if self.target_rule is None:
                raise UserInputError("a targeted attack needs target actions or a target rule")
            with torch.no_grad():
                target = self.target_rule(x, policy(x))
        if target is not None and (
            target.shape != x.shape[:1] or target.min() < 0 or target.max() >= policy.n_actions
        ):
            raise UserInputError(f"target must be (N,) actions in [0, {policy.n_actions})")
        found = self.perturb(gradient_policy(policy, self.eot), x, surface_mask(x, self.surface), target)
        if self.eot > 1:  # judged on the policy itself, as its adversarial logits are: one draw each
            with torch.no_grad():
                found.clean_logits = policy(x)
        adv = x + found.delta
        if self.bounds is not None:
            adv = adv.clamp(*self.bounds)
        if self.quantize:
            adv = torch.round(adv * 255) / 255
        with torch.no_grad():
            adv_logits = policy(adv)
        change = (adv - x).flatten(1)
        return AttackResult(
            adv=adv,
            clean_logits=found.clean_logits,
            adv_logits=adv_logits,
            linf=change.abs().amax(dim=1),
            l2=change.norm(dim=1),
            l0=moved(x, adv).flatten(1).sum(dim=1).to(x.dtype),
            target=target,
            iterations=found.iterations,
            queries=found.queries,
        )
