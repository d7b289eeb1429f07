"""APGD: its ball and range, its checkpoints, batch consistency, DLR's scale invariance, the math
of a linear policy, and its refusals."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rlattack.attacks.apgd import APGD, checkpoints, dlr
from rlattack.attacks.spec import AttackSpec
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from tests.conftest import assert_in_ball_and_range, small_batch, small_policy


@settings(max_examples=30, deadline=None)
@given(
    norm=st.sampled_from(["inf", "2"]),
    surface=st.sampled_from(["stack", "frame"]),
    eps=st.floats(0.0, 0.5),
    steps=st.integers(1, 12),
    loss=st.sampled_from(["ce", "dlr"]),
    seed=st.integers(0, 99),
)
def test_never_leaves_the_ball_or_the_unit_range(norm, surface, eps, steps, loss, seed) -> None:
    x = small_batch(seed)
    result = APGD(eps, norm, steps, loss, surface=surface, seed=seed)(small_policy(), x)
    assert_in_ball_and_range(result, x, eps, norm, surface)


def test_checkpoints_are_the_papers() -> None:
    # p = 0, 0.22, then p_j+1 = p_j + max(p_j - p_j-1 - 0.03, 0.06): 0.41, 0.57, 0.70, 0.80, ...
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(10) == [2, 4, 6, 7, 8, 9, 10]


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_a_batch_gives_what_its_samples_give_one_by_one(loss) -> None:
    x = small_batch(3, n=6)
    attack = APGD(0.05, steps=12, loss=loss, random_start=False)
    batch = attack(small_policy(), x)
    for i in range(len(x)):
        assert torch.allclose(batch.adv[i], attack(small_policy(), x[i : i + 1]).adv[0], atol=1e-12)


def linear_policy(scale: float = 1.0) -> tuple[Policy, torch.Tensor, float]:
    """Three actions with logits scale * (0, w.x, -1) at x = 0.5: action 0 leads by w.x = -c,
    action 1 overtakes it exactly when w.delta > c, so the L-inf distance to the change is c / |w|_1."""
    w = torch.tensor([0.5, -1.0, 2.0, -0.5, 1.0, 1.0], dtype=torch.float64)
    x = torch.full((1, 6), 0.5, dtype=torch.float64)
    c = 0.3
    net = nn.Linear(6, 3).double()
    with torch.no_grad():
        net.weight.copy_(scale * torch.stack([torch.zeros(6), w, torch.zeros(6)]))
        net.bias.copy_(scale * torch.tensor([0.0, -c - float(w @ x[0]), -1.0]))
    return Policy(net, 3, (6,), input_scale=1.0), x, c / float(w.abs().sum())


@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_a_linear_policy_is_fooled_exactly_beyond_its_distance(loss) -> None:
    policy, x, distance = linear_policy()
    assert APGD(1.05 * distance, steps=20, loss=loss)(policy, x).changed.all()
    assert not APGD(0.95 * distance, steps=20, loss=loss)(policy, x).changed.any()


def test_dlr_is_blind_to_the_scale_where_cross_entropy_saturates() -> None:
    """Logits a million times larger: float32's softmax is one-hot, the cross-entropy's gradient
    is exactly 0 and APGD-CE never moves; DLR's value and its attack are those of the unscaled."""
    small, x, distance = linear_policy()
    big, _, _ = linear_policy(scale=1e6)
    big, x = Policy(big.net.float(), 3, (6,), input_scale=1.0), x.float()
    assert torch.allclose(
        dlr(big(x), big(x).argmax(1)), dlr(small(x.double()), small(x.double()).argmax(1)).float()
    )
    assert not APGD(2 * distance, steps=10, loss="ce")(big, x).changed.any()
    assert APGD(2 * distance, steps=10, loss="dlr")(big, x).changed.all()


def test_targeted_cross_entropy_reaches_its_target() -> None:
    x = small_batch(5, n=8)
    target = (small_policy()(x).argmax(1) + 1) % 3
    result = APGD(0.3, steps=20, targeted=True)(small_policy(), x, target)
    assert (result.adv_action == target).float().mean() >= 0.75


def test_bad_arguments_are_refused() -> None:
    two = Policy(nn.Linear(3, 2), 2, (3,), input_scale=1.0)
    with pytest.raises(UserInputError, match="dlr loss needs at least 3 actions"):
        APGD(0.1, loss="dlr")(two, torch.rand(2, 3))
    with pytest.raises(UserInputError, match="untargeted"):
        APGD(0.1, loss="dlr", targeted=True)
    with pytest.raises(UserInputError, match="norms inf and 2"):
        APGD(0.1, norm="1")
    with pytest.raises(UserInputError, match="apgd takes loss ce or dlr, not margin"):
        AttackSpec.parse(name="apgd", eps=0.1, loss="margin")
