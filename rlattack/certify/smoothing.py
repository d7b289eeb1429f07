"""Randomized smoothing of the action (Cohen et al. 2019), certified per state as in CROP (Wu et al. 2022).

The smoothed policy takes the action the base policy picks most often under Gaussian noise:
g(x) = argmax_a P(argmax f(x + z) = a), z ~ N(0, sigma^2 I), with `x` the [0, 1] observation.
If the top action has probability at least p_lower > 1/2, g cannot change anywhere in the L2 ball
of radius sigma * Phi^-1(p_lower) around x (Cohen et al., Theorem 1 with p_B <= 1 - p_A). CERTIFY
picks the top action from n0 noisy copies, counts it in n fresh copies, and takes a one-sided
Clopper-Pearson lower bound at confidence 1 - alpha; it abstains when that bound is not above 1/2.
Each state's certificate is wrong with probability at most alpha.

The noisy input is not clipped to [0, 1]: the theorem is about the unclipped Gaussian, and the
base network sees values outside the pixel range. The ball is the whole L2 ball in R^d, so it
covers every attack that clips to [0, 1] or rounds to uint8 frames, as rlattack's attacks do.

Units: `radius` is an L2 norm on the [0, 1] scale. rlattack's L2 budget `eps` means a norm of
eps * sqrt(d), d the features changed, so `radius_eps = radius / sqrt(d)` with d the whole
observation (surface `stack`). An L-inf ball of eps lies inside the L2 ball of eps * sqrt(d), so
`radius_eps` also certifies L-inf eps (loosely, next to IBP). Against surface `frame`, d is one
frame's features: divide `radius` by sqrt of that instead.

Noise: every state in a batch gets the same draws, from one CPU `torch.Generator` seeded with
`seed` (n0 draws, then n more), so a batch gives what its states give one by one, on any device,
and each state's certificate still holds at level alpha. Results depend on (seed, n0, n,
batch_size): the chunk sizes decide how the stream is cut.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import beta, norm
from torch import Tensor, nn

from rlattack.errors import UserInputError
from rlattack.policies import Policy

ABSTAIN = -1
"""The action, and the radius, of a state the certificate abstains on."""


@dataclass
class SmoothingCertificate:
    """Per-state certificates of a batch of N observations; tensors on the CPU, N rows each."""

    action: Tensor
    """(N,) int64 smoothed action, -1 where the certificate abstains"""
    p_lower: Tensor
    """(N,) float64 lower confidence bound of the top action's probability under the noise"""
    radius: Tensor
    """(N,) float64 certified L2 radius on the [0, 1] scale, -1 where abstained"""
    radius_eps: Tensor
    """(N,) float64 the same radius in rlattack's L2 eps units (radius / sqrt(d)), -1 where abstained"""
    sigma: float
    n: int
    n0: int
    alpha: float

    @property
    def abstained(self) -> Tensor:
        """(N,) bool: no action could be certified (p_lower <= 1/2)."""
        return self.action == ABSTAIN


def check_smoothing(sigma: float, n: int, batch_size: int, n0: int = 1) -> None:
    """sigma a finite number > 0; n, n0 and batch_size whole numbers >= 1."""
    if not isinstance(sigma, int | float) or not math.isfinite(sigma) or sigma <= 0:
        raise UserInputError(f"sigma must be a finite number > 0, got {sigma!r}")
    for name, value in (("n", n), ("n0", n0), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserInputError(f"{name} must be a whole number >= 1, got {value!r}")


def _check_batch(policy: Policy, x: Tensor) -> None:
    if x.ndim < 2 or tuple(x.shape[1:]) != tuple(policy.obs_shape):
        raise UserInputError(
            f"observations of shape {tuple(x.shape)} do not fit {policy.name}, "
            f"which expects (N, {', '.join(map(str, policy.obs_shape))})"
        )
    if not x.is_floating_point():
        raise UserInputError("smoothing takes float observations in [0, 1]; divide uint8 by 255")


def noise_chunks(
    generator: torch.Generator,
    shape: tuple[int, ...],
    num: int,
    sigma: float,
    batch_size: int,
    dtype: torch.dtype,
    device: torch.device,
) -> Iterator[Tensor]:
    """`num` draws of N(0, sigma^2 I) of `shape`, in chunks of at most `batch_size`, drawn on the
    CPU (the same numbers on every device) and moved to `device`."""
    for start in range(0, num, batch_size):
        b = min(batch_size, num - start)
        yield (sigma * torch.randn((b, *shape), generator=generator, dtype=dtype)).to(device)


def votes(
    policy: Policy, x: Tensor, chunks: Iterable[Tensor], batch_size: int, soft: bool = False
) -> tuple[Tensor, Tensor | None]:
    """How often the base policy picks each action on `x + z` for each noise draw z of `chunks`.

    Returns (N, A) counts (in x's dtype) and, with `soft`, the (N, A) sums of softmax(logits)
    over the same draws, differentiable in `x`. Each forward pass takes at most `batch_size`
    inputs (a few states times one chunk), or one state times one chunk when that is more.
    """
    counts: Tensor | None = None
    soft_sum: Tensor | None = None
    for noise in chunks:
        b = len(noise)
        per_call = max(1, batch_size // b)
        chunk_counts, chunk_soft = [], []
        for group in x.split(per_call):
            logits = policy((group[:, None] + noise[None]).flatten(0, 1)).view(len(group), b, -1)
            picked = nn.functional.one_hot(logits.argmax(dim=2), logits.shape[2])
            chunk_counts.append(picked.sum(dim=1).to(x.dtype))
            if soft:
                chunk_soft.append(torch.softmax(logits, dim=2).sum(dim=1))
        c = torch.cat(chunk_counts)
        counts = c if counts is None else counts + c
        if soft:
            s = torch.cat(chunk_soft)
            soft_sum = s if soft_sum is None else soft_sum + s
    assert counts is not None  # num >= 1 draws
    return counts, soft_sum


def lower_confidence_bound(k: np.ndarray, n: int, alpha: float) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound of a success probability from k successes in n
    trials, at confidence 1 - alpha (0 when k = 0)."""
    k = np.asarray(k, dtype=np.float64)
    bound = beta.ppf(alpha, np.maximum(k, 1), n - k + 1)
    return np.where(k > 0, bound, 0.0)


def certify(
    policy: Policy,
    x: Tensor,
    sigma: float,
    n: int = 1000,
    n0: int = 100,
    alpha: float = 0.001,
    batch_size: int = 256,
    seed: int = 0,
) -> SmoothingCertificate:
    """Cohen et al.'s CERTIFY for each observation of `x`, `(N, *policy.obs_shape)` in [0, 1].

    Args:
        policy: the base policy (a `rlattack.policies.Policy`); its greedy action votes.
        sigma: noise standard deviation on the [0, 1] scale (0.1 is about 25 gray levels).
        n: noisy copies per state that estimate the top action's probability. The radius can
            reach at most sigma * Phi^-1(alpha ** (1 / n)): 2.5 sigma for n = 1000, alpha = 0.001.
        n0: noisy copies per state that pick the top action (separate draws from the n).
        alpha: each state's certificate is wrong with probability at most alpha.
        batch_size: at most this many noisy inputs per forward pass (memory), at least one
            state's chunk.
        seed: seeds the CPU generator of the noise; see the module docstring.

    Costs N * (n0 + n) forward passes, under `torch.no_grad()`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Linear(2, 2)
        >>> with torch.no_grad():
        ...     _ = net.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        ...     _ = net.bias.copy_(torch.tensor([0.0, -0.5]))
        >>> policy = Policy(net, n_actions=2, obs_shape=(2,), input_scale=1.0)
        >>> cert = certify(policy, torch.tensor([[0.9, 0.5], [0.5, 0.5]]), sigma=0.25)
        >>> cert.action.tolist()  # action 1 where x_0 > 0.5; a tie on the boundary abstains
        [1, -1]
        >>> 0 < cert.radius[0].item() < 0.4  # the boundary is 0.4 away
        True
    """
    check_smoothing(sigma, n, batch_size, n0)
    if not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise UserInputError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    _check_batch(policy, x)
    x = x.to(policy.device)
    generator = torch.Generator().manual_seed(seed)
    shape = tuple(x.shape[1:])
    with torch.no_grad():
        draws = noise_chunks(generator, shape, n0, sigma, batch_size, x.dtype, x.device)
        top = votes(policy, x, draws, batch_size)[0].argmax(dim=1)
        draws = noise_chunks(generator, shape, n, sigma, batch_size, x.dtype, x.device)
        counts = votes(policy, x, draws, batch_size)[0]
    k = counts.gather(1, top[:, None])[:, 0].round().cpu().numpy()
    p_lower = lower_confidence_bound(k, n, alpha)
    certified = p_lower > 0.5
    radius = np.where(certified, sigma * norm.ppf(np.where(certified, p_lower, 0.75)), float(ABSTAIN))
    d = math.prod(shape)
    return SmoothingCertificate(
        action=torch.where(torch.as_tensor(certified), top.cpu(), ABSTAIN),
        p_lower=torch.as_tensor(p_lower, dtype=torch.float64),
        radius=torch.as_tensor(radius, dtype=torch.float64),
        radius_eps=torch.as_tensor(np.where(certified, radius / math.sqrt(d), float(ABSTAIN))),
        sigma=float(sigma),
        n=n,
        n0=n0,
        alpha=float(alpha),
    )


def largest_radius_eps(
    sigma: float, obs_shape: tuple[int, ...], n: int = 1000, alpha: float = 0.001
) -> float:
    """The largest radius, in rlattack's eps units, that `certify` can give any state: every one of
    the n draws votes for the top action, so p_lower = alpha ** (1 / n). At sigma 0.25 and the
    defaults that is about 0.94 gray levels on an Atari stack: 1/255 is out of reach."""
    return float(sigma * norm.ppf(alpha ** (1 / n)) / math.sqrt(math.prod(obs_shape)))


def certified_share(cert: SmoothingCertificate, radius: float, in_eps: bool = False) -> float:
    """Share of the certificate's states whose smoothed action is certified at L2 radius at least
    `radius` (on the [0, 1] scale; in rlattack's L2 eps units with `in_eps`). Abstentions count
    as not certified, at every radius."""
    if not isinstance(radius, int | float) or not math.isfinite(radius) or radius < 0:
        raise UserInputError(f"radius must be a finite number >= 0, got {radius!r}")
    if len(cert.action) == 0:
        raise UserInputError("the certificate holds no states to take a share of")
    reach = cert.radius_eps if in_eps else cert.radius
    return float(((reach >= radius) & ~cert.abstained).double().mean())


class _Votes(nn.Module):
    """Maps [0, 1] observations to the log vote frequencies of a base policy under fixed noise.

    The same `n` draws (from `seed`) serve every call, cached per device and dtype, so the
    smoothed policy is a deterministic function of the observation. Under autograd, with an input
    that requires gradients, the values stay the vote log-frequencies and the gradient is that of
    the log of the mean softmax over the same draws (a straight-through estimate, the smoothed
    soft classifier that Salman et al. 2019 attack), so gradient attacks run on it.
    """

    def __init__(self, base: Policy, sigma: float, n: int, seed: int, batch_size: int) -> None:
        super().__init__()
        self.base = base
        # Buffers, so that `weights_digest` tells smoothed policies of other settings apart.
        self.register_buffer("sigma", torch.tensor(float(sigma), dtype=torch.float64))
        self.register_buffer("draws", torch.tensor([n, seed, batch_size], dtype=torch.int64))
        self._noise: tuple[torch.dtype, torch.device, list[Tensor]] | None = None

    def noise(self, dtype: torch.dtype, device: torch.device) -> list[Tensor]:
        if self._noise is None or self._noise[:2] != (dtype, device):
            n, seed, batch_size = (int(v) for v in self.draws)
            generator = torch.Generator().manual_seed(seed)
            shape = tuple(self.base.obs_shape)
            chunks = list(noise_chunks(generator, shape, n, float(self.sigma), batch_size, dtype, device))
            self._noise = (dtype, device, chunks)
        return self._noise[2]

    def forward(self, x: Tensor) -> Tensor:
        n, batch_size = int(self.draws[0]), int(self.draws[2])
        soft = torch.is_grad_enabled() and x.requires_grad
        counts, soft_sum = votes(self.base, x, self.noise(x.dtype, x.device), batch_size, soft=soft)
        log_freq = torch.log(counts / n)  # -inf for an action that got no vote
        if soft_sum is None:
            return log_freq
        soft_log = torch.log(soft_sum / n)
        return log_freq + (soft_log - soft_log.detach())


class SmoothedPolicy(Policy):
    """The smoothed policy g of a base policy, playable like any `Policy` (e.g. by
    `rlattack.rollout.evaluate`, for its own clean return).

    Its "logits" are the log frequencies of the base policy's greedy actions over `n` fixed noise
    draws N(0, sigma^2 I) added to the [0, 1] observation (unclipped): the greedy action is the
    majority vote, `act="sample"` samples from the vote frequencies (never an action without a
    vote: its logit is -inf). Each step costs `n` forward passes of the base policy per state, and
    the noise (n times the observation's size) is kept on the device.

    `certify` certifies the exact smoothed policy g (infinitely many draws). This one estimates g
    from n fixed draws: it plays g's action wherever the top action's probability is well above
    1/2 (with n = 100 and p = 0.7, a wrong majority has probability about 2e-5), but near a tie it
    may differ, and an attacker who knew the fixed draws would face this fixed ensemble, not g.

    Args:
        base: the policy that votes.
        sigma: noise standard deviation on the [0, 1] scale, as in `certify`.
        n: noise draws per decision.
        seed: seeds the fixed draws (a CPU generator, so the same on every device).
        batch_size: at most this many noisy inputs per forward pass of the base policy.
    """

    def __init__(
        self, base: Policy, sigma: float, n: int = 100, seed: int = 0, batch_size: int = 256
    ) -> None:
        check_smoothing(sigma, n, batch_size)
        super().__init__(
            _Votes(base, sigma, n, seed, batch_size),
            n_actions=base.n_actions,
            obs_shape=base.obs_shape,
            input_scale=1.0,  # the base policy scales its own input
            name=f"smoothed({base.name}, sigma={sigma:g}, n={n})",
            outputs="logits",
        )
        self.sigma = float(sigma)
        self.n = n

    @property
    def base(self) -> Policy:
        """The policy that votes."""
        return self.net.base
