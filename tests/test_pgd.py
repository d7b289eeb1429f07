"""PGD: stays in the eps-ball and [0, 1], reduces to FGSM, beats it; its margin loss."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rlattack.attacks import FGSM, PGD
from rlattack.attacks.base import loss_gradient, margin
from rlattack.attacks.targets import least_likely
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from tests.conftest import (
    SMALL_SHAPE,
    Logistic,
    assert_in_ball_and_range,
    small_batch,
    small_policy,
)

W = torch.tensor([-5, 3, -2, 2, -2, -5, -4, 3, 4, -4], dtype=torch.float32)
X = torch.tensor([[-1, -1, 1, -1, 1, 1, -1, 1, -1, -1]], dtype=torch.float32)


@settings(max_examples=30, deadline=None)
@given(
    norm=st.sampled_from(["inf", "2"]),
    surface=st.sampled_from(["stack", "frame"]),
    eps=st.floats(0.0, 0.5),
    steps=st.integers(1, 6),
    loss=st.sampled_from(["ce", "margin"]),
    seed=st.integers(0, 99),
)
def test_never_leaves_the_ball_or_the_unit_range(norm, surface, eps, steps, loss, seed) -> None:
    x = small_batch(seed)
    result = PGD(eps, norm, steps, step_size=eps, surface=surface, seed=seed, loss=loss)(small_policy(), x)
    assert_in_ball_and_range(result, x, eps, norm, surface)


@pytest.mark.parametrize("norm", ["inf", "2"])
@pytest.mark.parametrize("targeted", [False, True])
def test_one_step_of_size_eps_is_fgsm(norm, targeted) -> None:
    x = torch.rand(6, *SMALL_SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rule = least_likely if targeted else None
    fgsm = FGSM(0.03, norm, target=rule)(small_policy(), x)
    pgd = PGD(0.03, norm, steps=1, step_size=0.03, random_start=False, target=rule)(small_policy(), x)
    assert torch.allclose(fgsm.adv, pgd.adv, atol=1e-12)
    assert torch.equal(fgsm.adv_action, pgd.adv_action)


def test_more_steps_fool_at_least_as_often_as_fgsm() -> None:
    x = torch.rand(64, *SMALL_SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    fgsm = FGSM(0.02)(small_policy(), x).changed.float().mean()
    pgd = PGD(0.02, steps=20, step_size=0.005, random_start=False)(small_policy(), x).changed.float().mean()
    assert pgd >= fgsm and pgd > 0


def test_random_start_is_seeded_and_batch_consistent_without_it() -> None:
    x = torch.rand(5, *SMALL_SHAPE, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a, b = (PGD(0.05, seed=7)(small_policy(), x).adv for _ in range(2))
    assert torch.equal(a, b)
    attack = PGD(0.05, steps=5, random_start=False)
    batch = attack(small_policy(), x)
    for i in range(len(x)):
        assert torch.allclose(batch.adv[i], attack(small_policy(), x[i : i + 1]).adv[0], atol=1e-12)


@pytest.mark.parametrize("random_start", [False, True])
def test_a_margin_changes_the_action_where_cross_entropy_saturates(random_start) -> None:
    """Q-values 1000 apart (w.x = -2, scale 500): in float32 the softmax is exactly one-hot, so the
    cross-entropy's gradient is exactly 0 and PGD stays where it started; the margin's gradient is
    500 * w, whatever the scale, and eps * ||w||_1 = 3.4 > 2 is enough to cross the boundary."""
    policy = Policy(Logistic(500 * W), n_actions=2, obs_shape=(10,), input_scale=1.0)
    x = X + 0.05 * torch.randn(8, 10, generator=torch.Generator().manual_seed(0))
    grad, _ = loss_gradient(policy, x)
    assert torch.equal(grad, torch.zeros_like(x))
    ce = PGD(0.1, bounds=None, random_start=random_start)(policy, x)
    assert not ce.changed.any()
    found = PGD(0.1, bounds=None, random_start=random_start, loss="margin")(policy, x)
    assert found.changed.all()
    assert torch.allclose(found.adv - x, 0.1 * W.sign().expand_as(x), atol=1e-6)  # FGSM's corner


def test_the_margin_gradient_is_the_difference_of_two_rows() -> None:
    """For logits x @ M: untargeted, runner-up row minus greedy row; targeted at t, row t minus the
    best row other than t (the mirror); the same at any scale of M."""
    m = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 1.0], [3.0, -1.0, 0.0]], dtype=torch.float64)
    net = nn.Linear(3, 3, bias=False).double()
    net.weight.data = m.T.clone()
    policy = Policy(net, n_actions=3, obs_shape=(3,), input_scale=1.0)
    x = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)  # logits = rows of m
    grad, logits = loss_gradient(policy, x, loss="margin")
    assert torch.equal(logits, m[:2])
    assert torch.equal(margin(logits, torch.tensor([0, 1])), torch.tensor([-1.0, -1.0], dtype=torch.float64))
    assert torch.allclose(grad, torch.stack([m[:, 1] - m[:, 0], m[:, 2] - m[:, 1]]))
    target = torch.tensor([2, 0])
    grad, _ = loss_gradient(policy, x, target, targeted=True, loss="margin")
    assert torch.allclose(grad, torch.stack([m[:, 2] - m[:, 0], m[:, 0] - m[:, 1]]))


def test_targeted_margin_pgd_reaches_its_target() -> None:
    x = torch.rand(16, *SMALL_SHAPE, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    result = PGD(0.3, steps=20, target=least_likely, loss="margin")(small_policy(), x)
    assert result.success.all()


def test_margin_pgd_batch_equals_samples_one_by_one() -> None:
    x = torch.rand(5, *SMALL_SHAPE, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    attack = PGD(0.05, steps=5, random_start=False, loss="margin")
    batch = attack(small_policy(), x)
    for i in range(len(x)):
        assert torch.allclose(batch.adv[i], attack(small_policy(), x[i : i + 1]).adv[0], atol=1e-12)


def test_margin_pgd_leaves_no_gradient_on_the_weights() -> None:
    policy = small_policy()
    for p in policy.parameters():  # a network whose weights want gradients: only autograd.grad spares them
        p.requires_grad_(True)
    PGD(0.05, steps=3, loss="margin")(policy, torch.rand(3, *SMALL_SHAPE, dtype=torch.float64))
    assert all(p.grad is None for p in policy.parameters())


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(UserInputError, match="inf and 2"):
        PGD(0.1, "1")
    with pytest.raises(UserInputError, match="at least one step"):
        PGD(0.1, steps=0)
    with pytest.raises(UserInputError, match="unknown loss 'hinge'; choose one of ce, margin"):
        PGD(0.1, loss="hinge")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="unknown loss"):
        loss_gradient(small_policy(), torch.rand(1, *SMALL_SHAPE, dtype=torch.float64), loss="kl")  # type: ignore[arg-type]
