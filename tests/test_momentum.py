"""Momentum (MI-FGSM): stays in the eps-ball and [0, 1], is FGSM on a linear model, is PGD at decay 0."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlattack.attacks import FGSM, PGD, AttackSpec, Momentum
from rlattack.attacks.targets import least_likely
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from tests.conftest import (
    Logistic,
    assert_in_ball_and_range,
    small_batch,
    small_policy,
)

W = torch.tensor([-5, 3, -2, 2, -2, -5, -4, 3, 4, -4], dtype=torch.float64)
X = torch.tensor([[-1, -1, 1, -1, 1, 1, -1, 1, -1, -1]], dtype=torch.float64)


@settings(max_examples=30, deadline=None)
@given(
    norm=st.sampled_from(["inf", "2"]),
    surface=st.sampled_from(["stack", "frame"]),
    eps=st.floats(0.0, 0.5),
    steps=st.integers(1, 6),
    decay=st.floats(0.0, 2.0),
    targeted=st.booleans(),
    loss=st.sampled_from(["ce", "margin"]),
    seed=st.integers(0, 99),
)
def test_never_leaves_the_ball_or_the_unit_range(
    norm, surface, eps, steps, decay, targeted, loss, seed
) -> None:
    x = small_batch(seed)
    rule = least_likely if targeted else None
    attack = Momentum(eps, norm, steps, step_size=eps, decay=decay, surface=surface, target=rule, loss=loss)
    result = attack(small_policy(), x)
    assert_in_ball_and_range(result, x, eps, norm, surface)


@pytest.mark.parametrize("norm", ["inf", "2"])
@pytest.mark.parametrize("decay", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("steps", [1, 4, 10])
def test_on_a_linear_model_it_is_fgsm_and_meets_the_budget_exactly(norm, decay, steps) -> None:
    """Every gradient of a linear model points the same way, so `steps` steps of eps / steps add up
    to FGSM's single step: sigmoid(w.x) goes from 0.12 to 0.80 (the textbook example, L-inf)."""
    policy = Policy(Logistic(W), n_actions=2, obs_shape=(10,), input_scale=1.0)
    result = Momentum(0.1, norm, steps, decay=decay, bounds=None)(policy, X)
    fgsm = FGSM(0.1, norm, bounds=None)(policy, X)
    assert torch.allclose(result.adv, fgsm.adv, atol=1e-12)
    if norm == "inf":
        assert torch.allclose(result.adv - X, 0.1 * torch.sign(W), atol=1e-12)
        assert torch.sigmoid(result.adv @ W).item() == pytest.approx(0.80, abs=0.005)
    else:
        assert result.l2.item() == pytest.approx(0.1 * math.sqrt(10), rel=1e-12)
    assert result.clean_action.item() == 0 and result.adv_action.item() == 1


@pytest.mark.parametrize("norm", ["inf", "2"])
@pytest.mark.parametrize("targeted", [False, True])
@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_without_momentum_it_is_pgd_from_the_clean_point(norm, targeted, loss) -> None:
    """decay = 0 keeps only the current gradient, whose L1 scaling neither sign nor direction sees."""
    x, rule = small_batch(2, n=6), least_likely if targeted else None
    momentum = Momentum(0.05, norm, steps=5, decay=0.0, target=rule, loss=loss)(small_policy(), x)
    pgd = PGD(0.05, norm, steps=5, step_size=0.01, random_start=False, target=rule, loss=loss)(
        small_policy(), x
    )
    assert torch.allclose(momentum.adv, pgd.adv, atol=1e-12)


def test_it_fools_at_least_as_often_as_fgsm() -> None:
    x = small_batch(3, n=64)
    fgsm = FGSM(0.02)(small_policy(), x).changed.float().mean()
    momentum = Momentum(0.02, steps=10)(small_policy(), x).changed.float().mean()
    assert momentum >= fgsm and momentum > 0


def test_targeted_raises_the_target_probability() -> None:
    policy, x = small_policy(), small_batch(4, n=8)
    probs = torch.softmax(policy(x), dim=1)
    target = probs.argmin(dim=1)
    result = Momentum(0.02, targeted=True)(policy, x, target)
    after = torch.softmax(policy(result.adv), dim=1)
    rows = torch.arange(len(x))
    assert torch.equal(result.target, target)
    assert (after[rows, target] > probs[rows, target]).all()


@pytest.mark.parametrize("loss", ["ce", "margin"])
def test_a_margin_changes_the_action_where_cross_entropy_saturates(loss) -> None:
    """Q-values 1000 apart: in float32 the softmax is exactly one-hot and the cross-entropy's
    gradient exactly 0, so its velocity never starts; the margin's gradient is 500 * w."""
    policy = Policy(Logistic(500 * W.float()), n_actions=2, obs_shape=(10,), input_scale=1.0)
    x = X.float()
    assert torch.equal(PGD(0.1, steps=1, random_start=False, bounds=None)(policy, x).adv, x)  # zero gradient
    result = Momentum(0.1, bounds=None, loss=loss)(policy, x)
    assert bool(result.changed.item()) == (loss == "margin")


@pytest.mark.parametrize("norm", ["inf", "2"])
@pytest.mark.parametrize("surface", ["stack", "frame"])
def test_batch_equals_samples_one_by_one(norm, surface) -> None:
    policy, x = small_policy(), small_batch(7, n=5)
    attack = Momentum(0.05, norm, steps=5, surface=surface)
    batch = attack(policy, x)
    for i in range(len(x)):
        alone = attack(policy, x[i : i + 1])
        assert torch.allclose(batch.adv[i], alone.adv[0], atol=1e-12)
        assert batch.adv_action[i] == alone.adv_action[0]


def test_no_gradient_lands_on_the_weights() -> None:
    policy = small_policy()
    for p in policy.parameters():  # a network whose weights want gradients: only autograd.grad spares them
        p.requires_grad_(True)
    Momentum(0.05, steps=3, loss="margin")(policy, small_batch(1))
    Momentum(0.05, steps=3, target=least_likely)(policy, small_batch(1))
    assert all(p.grad is None for p in policy.parameters())


def test_the_spec_builds_it() -> None:
    spec = AttackSpec(name="momentum", eps="2/255", norm="2", steps=4, decay=0.5, loss="margin")
    attack = spec.build()
    assert isinstance(attack, Momentum)
    assert (attack.eps, attack.norm, attack.steps, attack.decay, attack.loss) == (
        2 / 255,
        "2",
        4,
        0.5,
        "margin",
    )
    assert attack.step_size == pytest.approx(2 / 255 / 4) and not attack.targeted
    assert AttackSpec(name="momentum", eps=0.1, target="action:1").build().targeted


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decay": -0.5}, "decay must be a finite number >= 0"),
        ({"decay": float("nan")}, "decay must be a finite number >= 0"),
        ({"norm": "1"}, "Momentum supports norms inf and 2"),
        ({"steps": 0}, "at least one step"),
        ({"step_size": -1.0}, "step size must be >= 0"),
        ({"loss": "hinge"}, "unknown loss 'hinge'"),
        ({"eps": -1.0}, "eps"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message) -> None:
    with pytest.raises(UserInputError, match=message):
        Momentum(**({"eps": 0.1} | kwargs))


def test_an_untargeted_attack_takes_no_target(tiny_policy) -> None:
    with pytest.raises(UserInputError, match="untargeted"):
        Momentum(0.1)(tiny_policy, small_batch(0, n=2), torch.tensor([0, 1]))
    with pytest.raises(UserInputError, match="decay: Input should be greater than or equal to 0"):
        AttackSpec.parse(name="momentum", eps=0.1, decay=-1)
