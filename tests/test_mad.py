"""MAD: stays in the eps-ball and [0, 1], reaches the KL's maximum on a linear model, beats noise."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from rlattack.attacks import MAD, AttackSpec, Noise
from rlattack.attacks.mad import kl_gradient
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from tests.conftest import (
    Logistic,
    assert_in_ball_and_range,
    small_batch,
    small_policy,
)


def _kl(policy: Policy, x: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """(N,) KL(pi(.|x) || pi(.|adv))."""
    with torch.no_grad():
        p, q = F.log_softmax(policy(x), dim=1), F.log_softmax(policy(adv), dim=1)
    return F.kl_div(q, p, reduction="none", log_target=True).sum(dim=1)


@settings(max_examples=30, deadline=None)
@given(
    norm=st.sampled_from(["inf", "2"]),
    surface=st.sampled_from(["stack", "frame"]),
    eps=st.floats(0.0, 0.5),
    steps=st.integers(1, 6),
    seed=st.integers(0, 99),
)
def test_never_leaves_the_ball_or_the_unit_range(norm, surface, eps, steps, seed) -> None:
    x = small_batch(seed)
    result = MAD(eps, norm, steps, surface=surface, seed=seed)(small_policy(), x)
    assert_in_ball_and_range(result, x, eps, norm, surface)


@settings(max_examples=30, deadline=None)
@given(
    signs=st.lists(st.sampled_from([-1.0, 1.0]), min_size=10, max_size=10),
    sizes=st.lists(st.floats(0.1, 2.0), min_size=10, max_size=10),
    eps=st.floats(0.001, 0.3),
    seed=st.integers(0, 99),
)
def test_on_a_linear_model_it_ends_in_a_corner_of_the_cube(signs, sizes, eps, seed) -> None:
    """Along w the KL is convex with its minimum at the clean point, so the sign steps push every
    feature to +-eps, all in the direction the random start took: the budget is met exactly."""
    w = torch.tensor(signs, dtype=torch.float64) * torch.tensor(sizes, dtype=torch.float64)
    policy = Policy(Logistic(w), n_actions=2, obs_shape=(10,), input_scale=1.0)
    x = torch.rand(6, 10, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    result = MAD(eps, steps=10, bounds=None, seed=seed)(policy, x)
    delta = result.adv - x
    assert torch.allclose(delta.abs(), torch.full_like(delta, eps), rtol=1e-9)
    corner = delta.sign() * w.sign()  # +1 everywhere or -1 everywhere, per sample
    assert (corner == corner[:, :1]).all()
    assert torch.allclose(result.linf, torch.full((6,), eps, dtype=torch.float64), rtol=1e-9)


def test_it_reaches_the_largest_kl_of_the_ball() -> None:
    """At w.x = 0 the policy is (1/2, 1/2) and the KL to sigmoid(c) is log cosh(c / 2); the
    largest c in the L-inf ball of radius eps is eps * ||w||_1."""
    w = torch.tensor([-5, 3, -2, 2, -2, -5, -4, 3, 4, -4], dtype=torch.float64)
    policy = Policy(Logistic(w), n_actions=2, obs_shape=(10,), input_scale=1.0)
    x = torch.randn(8, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = x - (x @ w / (w @ w)).unsqueeze(1) * w  # on the decision boundary
    eps = 0.05
    result = MAD(eps, bounds=None)(policy, x)
    best = math.log(math.cosh(eps * w.abs().sum().item() / 2))
    assert torch.allclose(_kl(policy, x, result.adv), torch.full((8,), best, dtype=torch.float64), rtol=1e-9)


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_it_raises_the_kl_more_than_noise_of_the_same_norm(norm) -> None:
    policy, x = small_policy(), small_batch(5, n=32)
    mad = MAD(0.05, norm, bounds=None)(policy, x)
    noise = Noise(0.05, norm, bounds=None, seed=0)(policy, x)  # exactly on the sphere of the ball
    measured = (mad.linf, noise.linf) if norm == "inf" else (mad.l2, noise.l2)
    assert (measured[0] <= measured[1] + 1e-9).all()
    assert _kl(policy, x, mad.adv).mean() > 3 * _kl(policy, x, noise.adv).mean()


@pytest.mark.parametrize("norm", ["inf", "2"])
@pytest.mark.parametrize("surface", ["stack", "frame"])
def test_batch_equals_samples_one_by_one(norm, surface) -> None:
    """The random start is keyed by the seed and each sample's values, not its place in a batch."""
    policy, x = small_policy(), small_batch(7, n=5)
    attack = MAD(0.05, norm, steps=5, surface=surface, seed=3)
    batch = attack(policy, x)
    for i in range(len(x)):
        alone = attack(policy, x[i : i + 1])
        assert torch.allclose(batch.adv[i], alone.adv[0], atol=1e-12)
        assert batch.adv_action[i] == alone.adv_action[0]
    assert torch.equal(batch.adv, attack(policy, x).adv)  # and again on a second call


def test_the_seed_chooses_the_start() -> None:
    policy, x = small_policy(), small_batch(8)
    first, again, other = (MAD(0.05, steps=1, seed=s)(policy, x).adv for s in (1, 1, 2))
    assert torch.equal(first, again) and not torch.equal(first, other)
    spec = AttackSpec(name="mad", eps=0.05, steps=1)
    assert torch.equal(spec.build(seed=1)(policy, x).adv, first)


def test_no_gradient_lands_on_the_weights() -> None:
    policy = small_policy()
    for p in policy.parameters():  # a network whose weights want gradients: only autograd.grad spares them
        p.requires_grad_(True)
    MAD(0.05, steps=3)(policy, small_batch(1))
    assert all(p.grad is None for p in policy.parameters())


def test_the_random_start_gets_it_past_the_zero_gradient_at_the_clean_point() -> None:
    """The KL's gradient at delta = 0 is zero up to rounding (whose sign is noise); the random
    start is what gets MAD going."""
    policy, x = small_policy(), small_batch(9)
    with torch.no_grad():
        clean = F.log_softmax(policy(x), dim=1)
    assert kl_gradient(policy, x, clean).abs().max() < 1e-15
    result = MAD(0.05, steps=3)(policy, x)
    assert (_kl(policy, x, result.adv) > 0).all()


def test_bad_arguments_are_refused(tiny_policy) -> None:
    with pytest.raises(UserInputError, match="MAD supports norms inf and 2"):
        MAD(0.1, "1")
    with pytest.raises(UserInputError, match="at least one step"):
        MAD(0.1, steps=0)
    with pytest.raises(UserInputError, match="step size must be >= 0"):
        MAD(0.1, step_size=-0.1)
    with pytest.raises(UserInputError, match="eps"):
        MAD(-0.1)
    x = small_batch(0, n=2)
    with pytest.raises(UserInputError, match="untargeted"):
        MAD(0.1)(tiny_policy, x, torch.tensor([0, 1]))
    with pytest.raises(UserInputError, match="mad is untargeted: it takes no target"):
        AttackSpec.parse(name="mad", eps=0.1, target="least-likely")
