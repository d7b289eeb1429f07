"""Square: its ball and range, batch consistency, its query budget and early stop, a linear policy's
math, and a gradient that is hidden from every white-box attack but not from it."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from rlattack.attacks import PGD
from rlattack.attacks.spec import AttackSpec
from rlattack.attacks.square import Square, window_share
from rlattack.attacks.transfer import Transfer
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from tests.conftest import SMALL_SHAPE, assert_in_ball_and_range, small_batch, small_policy


@settings(max_examples=30, deadline=None)
@given(
    norm=st.sampled_from(["inf", "2"]),
    surface=st.sampled_from(["stack", "frame"]),
    eps=st.floats(0.0, 0.5),
    queries=st.integers(1, 30),
    seed=st.integers(0, 99),
)
def test_never_leaves_the_ball_or_the_unit_range(norm, surface, eps, queries, seed) -> None:
    x = small_batch(seed)
    result = Square(eps, norm, queries, surface=surface, seed=seed)(small_policy(), x)
    assert_in_ball_and_range(result, x, eps, norm, surface)
    assert ((result.queries >= 1) & (result.queries <= queries)).all()


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_a_batch_gives_what_its_samples_give_one_by_one(norm) -> None:
    x = small_batch(4, n=6)
    attack = Square(0.1, norm, queries=40, seed=3)
    batch = attack(small_policy(), x)
    for i in range(len(x)):
        alone = attack(small_policy(), x[i : i + 1])
        assert torch.allclose(batch.adv[i], alone.adv[0], atol=1e-12)
        assert batch.queries[i] == alone.queries[0]


def test_the_window_shrinks_on_the_papers_schedule() -> None:
    assert window_share(0.8, 0, 10_000) == 0.8
    assert window_share(0.8, 11, 10_000) == 0.4
    assert window_share(0.8, 8001, 10_000) == 0.8 / 512
    assert window_share(0.8, 11, 100) == 0.8 / 2**5  # 11 of 100 queries is 1,100 of 10,000


class Linear(nn.Module):
    """Two actions, logits (0, w.x + b), on (1, 4, 4) frames."""

    def __init__(self, w: torch.Tensor, b: float) -> None:
        super().__init__()
        self.w, self.b = nn.Parameter(w), nn.Parameter(torch.tensor(b, dtype=w.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x.flatten(1) * self.w).sum(1) + self.b
        return torch.stack([torch.zeros_like(z), z], dim=1)


def test_a_linear_policy_is_fooled_beyond_its_distance_and_never_within() -> None:
    """Action 0 leads by c at x: the L-inf distance to action 1 is c / |w|_1. With twice that
    budget the search finds a change within its queries; within the distance none exists."""
    w = torch.randn(16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = torch.full((1, 1, 4, 4), 0.5, dtype=torch.float64)
    c = 0.2
    policy = Policy(Linear(w, -c - 0.5 * float(w.sum())), 2, (1, 4, 4), input_scale=1.0)
    distance = c / float(w.abs().sum())
    found = Square(2 * distance, queries=200)(policy, x)
    assert found.changed.all() and found.queries.item() < 200
    missed = Square(0.99 * distance, queries=200)(policy, x)
    assert not missed.changed.any() and missed.queries.item() == 200


def test_a_sample_stops_querying_once_its_action_changed() -> None:
    x = small_batch(6, n=16)
    result = Square(0.5, queries=50)(small_policy(), x)
    assert result.changed.any()
    assert (result.queries[~result.changed] == 50).all()
    assert (result.queries[result.changed] < 50).all()


class Rounded(nn.Module):
    """The tiny net behind a rounding to gray levels: the same outputs on uint8 frames, and an input
    gradient that is exactly zero everywhere (shattered gradients)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.round(x * 255) / 255)


def test_a_shattered_gradient_stops_pgd_but_not_square() -> None:
    """Square changes nearly as many actions of the rounded net as PGD crafted on the plain twin
    and shown to it (the transfer that the hidden gradient cannot stop)."""
    plain = small_policy()
    hidden = Policy(Rounded(plain.net), 3, SMALL_SHAPE, input_scale=1.0)
    x = torch.round(small_batch(7, n=32) * 255) / 255
    assert not PGD(0.1, random_start=False)(hidden, x).changed.any()
    transferred = Transfer(PGD(0.1), plain)(hidden, x).changed.float().mean()
    square = Square(0.1, queries=500)(hidden, x).changed.float().mean()
    assert transferred > 0.5 and square >= transferred - 0.1


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(UserInputError, match="norms inf and 2"):
        Square(0.1, norm="1")
    with pytest.raises(UserInputError, match="at least one query"):
        Square(0.1, queries=0)
    with pytest.raises(UserInputError, match=r"\(N, C, H, W\)"):
        Square(0.1)(Policy(nn.Linear(3, 2), 2, (3,), input_scale=1.0), torch.rand(2, 3))
    with pytest.raises(UserInputError, match="square takes no surrogate"):
        AttackSpec.parse(name="square", eps=0.1, surrogate="pong-dqn")
