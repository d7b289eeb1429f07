"""Randomized-smoothing certificates: radii against the exact Gaussian, soundness under PGD,
batch-equals-samples, abstention, input errors, and the playable smoothed policy."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
import torch
from scipy.stats import beta, norm
from torch import nn

import rlattack.certify.smoothing as smoothing
from rlattack.attacks import PGD
from rlattack.certify.smoothing import SmoothedPolicy, certified_share, certify
from rlattack.errors import UserInputError
from rlattack.policies import Policy, weights_digest
from tests.conftest import SMALL_SHAPE, tiny_net

LINEAR_SHAPE = (2, 4)
D = math.prod(LINEAR_SHAPE)
U = torch.full(LINEAR_SHAPE, 1 / math.sqrt(D), dtype=torch.float64)
"""Unit normal of the linear policy's decision boundary."""
CENTRE = torch.full(LINEAR_SHAPE, 0.5, dtype=torch.float64)
"""A point on the boundary."""


def linear_policy() -> Policy:
    """Action 1 where U . (x - CENTRE) > 0, else 0; the boundary is |U . (x - CENTRE)| away."""
    head = nn.Linear(D, 2).double()
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.weight[1] = U.flatten()
        head.bias[1] = -(U * CENTRE).sum()
    return Policy(nn.Sequential(nn.Flatten(), head), n_actions=2, obs_shape=LINEAR_SHAPE, input_scale=1.0)


def at_distances(distances: list[float]) -> torch.Tensor:
    """States at signed distances from the linear policy's boundary (positive: action 1)."""
    return torch.stack([CENTRE + r * U for r in distances])


def signed_distance(x: torch.Tensor) -> torch.Tensor:
    return ((x - CENTRE) * U).flatten(1).sum(dim=1)


def tiny_states(count: int = 16, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(count, *SMALL_SHAPE, generator=generator, dtype=torch.float64)


def large_sample_action(policy: Policy, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A fresh smoothed prediction, with draws apart from the certificate's."""
    return SmoothedPolicy(policy, sigma, n=4000, seed=12345, batch_size=4000)(x).argmax(dim=1)


def test_the_docstring_example_runs() -> None:
    assert doctest.testmod(smoothing).failed == 0


def test_linear_radius_is_below_the_distance_and_near_the_exact_gaussian_bound() -> None:
    sigma, n, alpha = 0.25, 2000, 0.001
    distances = [0.1, 0.2, 0.4, -0.3]
    cert = certify(linear_policy(), at_distances(distances), sigma, n=n, n0=100, alpha=alpha)
    assert cert.action.tolist() == [1, 1, 1, 0]
    for i, r in enumerate(distances):
        p = norm.cdf(abs(r) / sigma)  # the top action's exact probability under the noise
        k_low = math.floor(n * p - 4.5 * math.sqrt(n * p * (1 - p)))  # Clopper-Pearson slack
        slack_radius = sigma * norm.ppf(beta.ppf(alpha, k_low, n - k_low + 1))
        assert cert.p_lower[i] < p
        assert slack_radius <= cert.radius[i] < abs(r)
        assert cert.radius[i] == pytest.approx(sigma * norm.ppf(float(cert.p_lower[i])), rel=1e-12)
    assert torch.allclose(cert.radius_eps, cert.radius / math.sqrt(D))
    assert certified_share(cert, 0.0) == 1.0
    assert certified_share(cert, 0.5) == 0.0
    assert certified_share(cert, float(cert.radius[0]) + 1e-9) == 0.75
    assert certified_share(cert, float(cert.radius_eps[0]) + 1e-9, in_eps=True) == 0.75


def test_pgd_inside_the_radius_never_changes_the_linear_smoothed_action() -> None:
    """The linear policy is Cohen et al.'s worst case: L2 PGD reaches the ball's nearest point to
    the boundary, and the smoothed action there still stands; a little further it falls."""
    policy, sigma = linear_policy(), 0.25
    distances = [0.3, 0.5, -0.4]
    x = at_distances(distances)
    cert = certify(policy, x, sigma, n=2000)
    for i, r in enumerate(distances):
        state = x[i : i + 1]
        inside = PGD(float(cert.radius_eps[i]), norm="2", steps=20, random_start=False)(policy, state).adv
        left = float(signed_distance(inside)) * math.copysign(1, r)
        assert left == pytest.approx(abs(r) - float(cert.radius[i]), abs=1e-6)  # the attack is optimal
        assert left > 0
        assert large_sample_action(policy, inside, sigma).item() == cert.action[i]
        beyond = PGD(1.2 * abs(r) / math.sqrt(D), norm="2", steps=20)(policy, state).adv
        assert large_sample_action(policy, beyond, sigma).item() != cert.action[i]


def test_pgd_inside_the_radius_never_changes_a_conv_nets_smoothed_action(tiny_policy) -> None:
    sigma = 0.25
    x = tiny_states()
    cert = certify(tiny_policy, x, sigma, n=1000)
    confident = (cert.p_lower > 0.75).nonzero()[:, 0]
    assert len(confident) >= 5
    smoothed = SmoothedPolicy(tiny_policy, sigma, n=64, seed=3)
    changed_far = 0
    for i in confident[:8].tolist():
        state, eps = x[i : i + 1], float(cert.radius_eps[i])
        for victim in (tiny_policy, smoothed):  # the base's gradient, and the smoothed soft classifier's
            adv = PGD(eps, norm="2", steps=10, seed=i)(victim, state).adv
            assert (adv - state).norm() <= cert.radius[i] + 1e-9
            assert large_sample_action(tiny_policy, adv, sigma).item() == cert.action[i]
        far = PGD(3 * eps, norm="2", steps=10, seed=i)(smoothed, state).adv
        changed_far += int(large_sample_action(tiny_policy, far, sigma).item() != cert.action[i])
    assert changed_far > 0  # the attack has teeth: beyond the radius it does change actions


def test_a_batch_certifies_as_its_samples_one_by_one_and_the_seed_fixes_the_result(tiny_policy) -> None:
    x = tiny_states(6)
    kwargs = {"sigma": 0.25, "n": 300, "n0": 30, "batch_size": 64}
    cert = certify(tiny_policy, x, **kwargs)
    for i in range(len(x)):
        alone = certify(tiny_policy, x[i : i + 1], **kwargs)
        assert alone.action.item() == cert.action[i]
        assert alone.p_lower.item() == cert.p_lower[i]
        assert alone.radius.item() == cert.radius[i]
    again = certify(tiny_policy, x, **kwargs)
    assert torch.equal(again.p_lower, cert.p_lower) and torch.equal(again.action, cert.action)
    other = certify(tiny_policy, x, **kwargs, seed=1)
    assert not torch.equal(other.p_lower, cert.p_lower)


def test_a_state_on_a_50_50_boundary_abstains() -> None:
    cert = certify(linear_policy(), at_distances([0.0, 0.3]), sigma=0.25, n=2000)
    assert cert.abstained.tolist() == [True, False]
    assert (cert.action[0], cert.radius[0], cert.radius_eps[0]) == (-1, -1.0, -1.0)
    assert 0.4 < cert.p_lower[0] <= 0.5
    assert certified_share(cert, 0.0) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sigma": 0.0}, "sigma"),
        ({"sigma": -0.1}, "sigma"),
        ({"sigma": float("nan")}, "sigma"),
        ({"n": 0}, "n must"),
        ({"n": 2.5}, "n must"),
        ({"n0": 0}, "n0 must"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_settings_are_user_errors(kwargs, message) -> None:
    settings = {"sigma": 0.25, "n": 10, "n0": 5} | kwargs
    with pytest.raises(UserInputError, match=message):
        certify(linear_policy(), at_distances([0.3]), **settings)


def test_bad_observations_and_radii_are_user_errors(tiny_policy) -> None:
    with pytest.raises(UserInputError, match="do not fit"):
        certify(linear_policy(), tiny_states(2), sigma=0.25)
    with pytest.raises(UserInputError, match="divide uint8"):
        certify(tiny_policy, (tiny_states(2) * 255).to(torch.uint8), sigma=0.25)
    with pytest.raises(UserInputError, match="sigma"):
        SmoothedPolicy(tiny_policy, sigma=0.0)
    cert = certify(linear_policy(), at_distances([0.3]), sigma=0.25, n=10, n0=5)
    with pytest.raises(UserInputError, match="radius"):
        certified_share(cert, -1.0)


def test_the_smoothed_policy_plays_the_certified_action(tiny_policy) -> None:
    sigma = 0.25
    x = tiny_states()
    cert = certify(tiny_policy, x, sigma, n=1000)
    smoothed = SmoothedPolicy(tiny_policy, sigma, n=200)
    logits = smoothed(x)
    large_margin = cert.p_lower > 0.9
    assert large_margin.sum() >= 5
    assert torch.equal(logits.argmax(dim=1)[large_margin], cert.action[large_margin])
    assert torch.allclose(logits.exp().sum(dim=1), torch.ones(len(x), dtype=x.dtype))  # vote frequencies
    assert torch.equal(smoothed(x), logits)  # fixed draws: a deterministic policy
    assert torch.equal(torch.cat([smoothed(x[i : i + 1]) for i in range(len(x))]), logits)
    single = SmoothedPolicy(Policy(tiny_net(), n_actions=3, obs_shape=SMALL_SHAPE, input_scale=1.0), sigma)
    frames = (x * 255).round().to(torch.uint8).numpy()  # `act` takes uint8 frames to float32
    assert np.array_equal(single.act(frames), single(torch.as_tensor(frames) / 255.0).argmax(1).numpy())
    assert (smoothed.n_actions, smoothed.obs_shape, smoothed.outputs) == (3, SMALL_SHAPE, "logits")
    assert smoothed.device == tiny_policy.device and "smoothed" in smoothed.name
    with pytest.raises(UserInputError, match="action-space mismatch"):
        smoothed.check_fits(6, SMALL_SHAPE, "pong")
    assert weights_digest(smoothed) != weights_digest(SmoothedPolicy(tiny_policy, 0.5, n=200))
    assert not any(p.requires_grad for p in tiny_policy.parameters())


def test_evaluate_plays_a_smoothed_agent(tiny_atari_agent) -> None:
    from rlattack.loading import load_policy
    from rlattack.rollout.evaluate import evaluate

    base = load_policy(tiny_atari_agent)
    # noise far below a gray level: every vote is the base policy's action, so the game is its game
    smoothed = SmoothedPolicy(base, sigma=1e-9, n=4)
    played = evaluate(smoothed, "pong", episodes=1, progress=False)
    alone = evaluate(base, "pong", episodes=1, progress=False)
    assert played.summary["episodes"] == 1
    assert [(e.score, e.length) for e in played.episodes] == [(e.score, e.length) for e in alone.episodes]
