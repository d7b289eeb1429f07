"""JSMA: the pair search, the bounds and gamma, batching, reaching targets, both signs of theta."""

from __future__ import annotations

import math

import pytest
import torch

from rlattack.attacks import JSMA
from rlattack.attacks.jsma import NO_PAIR, select_pairs
from rlattack.attacks.targets import FixedAction
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from tests.conftest import SMALL_SHAPE, tiny_net

F = math.prod(SMALL_SHAPE)


def _policy() -> Policy:
    return Policy(tiny_net().double(), 3, SMALL_SHAPE, input_scale=1.0)


def _x(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, *SMALL_SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _pair_score(a: torch.Tensor, b: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(len(a))
    pa = a[rows, pairs[:, 0]] + a[rows, pairs[:, 1]]
    pb = b[rows, pairs[:, 0]] + b[rows, pairs[:, 1]]
    return pa * -pb


def _brute_force(a: torch.Tensor, b: torch.Tensor, domain: torch.Tensor) -> torch.Tensor:
    """The best admissible pair by a dense (B, F, F) matrix: fine on small inputs only."""
    pa, pb = a[:, :, None] + a[:, None, :], b[:, :, None] + b[:, None, :]
    ok = (pa > 0) & (pb < 0) & domain[:, :, None] & domain[:, None, :]
    ok &= ~torch.eye(a.shape[1], dtype=torch.bool)
    score = torch.where(ok, pa * -pb, torch.tensor(-math.inf, dtype=a.dtype)).flatten(1)
    best, flat = score.max(dim=1)
    pairs = torch.stack([flat // a.shape[1], flat % a.shape[1]], 1)
    return torch.where(torch.isfinite(best)[:, None], pairs, torch.full_like(pairs, NO_PAIR))


@pytest.mark.parametrize("seed", range(5))
def test_exhaustive_search_finds_the_brute_force_optimum(seed) -> None:
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(4, 300, generator=g), torch.randn(4, 300, generator=g)
    domain = torch.rand(4, 300, generator=g) > 0.2
    exhaustive, brute = select_pairs(a, b, domain, "exhaustive"), _brute_force(a, b, domain)
    assert torch.allclose(_pair_score(a, b, exhaustive), _pair_score(a, b, brute))


@pytest.mark.parametrize("seed", range(5))
def test_topk_is_exhaustive_when_its_candidates_cover_the_domain(seed) -> None:
    """The claim of the docstring: with 3k >= F the restricted search is the exhaustive one."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(4, 60, generator=g), torch.randn(4, 60, generator=g)
    domain = torch.rand(4, 60, generator=g) > 0.3
    topk = select_pairs(a, b, domain, "topk", k=60)
    assert torch.allclose(_pair_score(a, b, topk), _pair_score(a, b, _brute_force(a, b, domain)))


def test_no_admissible_pair_is_reported_not_faked() -> None:
    a, b = -torch.ones(2, 10), torch.ones(2, 10)  # no pair has alpha > 0 and beta < 0
    for search in ("topk", "exhaustive"):
        assert (select_pairs(a, b, torch.ones(2, 10, dtype=torch.bool), search) == NO_PAIR).all()


@pytest.mark.parametrize("theta", [1.0, 0.3, -0.3, -1.0])
@pytest.mark.parametrize("surface", ["stack", "frame"])
def test_bounds_gamma_and_direction_hold(theta, surface) -> None:
    x = _x(6)
    result = JSMA(theta, gamma=0.1, surface=surface)(_policy(), x)
    change = result.adv - x
    d = F if surface == "stack" else math.prod(SMALL_SHAPE[1:])
    assert result.adv.min() >= 0 and result.adv.max() <= 1
    assert (result.l0 <= math.floor(0.1 * d)).all()
    assert (change >= 0).all() if theta > 0 else (change <= 0).all()
    assert (change.abs().flatten(1).amax(1) <= 1).all() and result.l0.max() > 0
    if surface == "frame":
        assert torch.equal(result.adv[:, :-1], x[:, :-1])


@pytest.mark.parametrize("search", ["topk", "exhaustive"])
def test_batch_equals_samples_one_by_one(search) -> None:
    x = _x(5, seed=4)
    attack = JSMA(0.5, gamma=0.2, search=search)
    batch = attack(_policy(), x)
    for i in range(len(x)):
        alone = attack(_policy(), x[i : i + 1])
        assert torch.equal(batch.adv[i], alone.adv[0])
        assert batch.iterations[i] == alone.iterations[0]


def test_reachable_targets_are_reached_and_success_is_on_logits() -> None:
    policy = _policy()
    x = _x(16, seed=5)
    result = JSMA(1.0, gamma=0.5, target=FixedAction(2))(policy, x)
    assert result.success.float().mean() >= 0.9
    assert torch.equal(result.success, policy(result.adv).argmax(1) == 2)
    already = result.clean_action == 2
    assert (result.iterations[already] == 0).all() and (result.l0[already] == 0).all()
    assert (result.l0[result.success] <= 2 * result.iterations[result.success]).all()


def test_topk_and_exhaustive_attacks_agree_on_a_small_network() -> None:
    x = _x(8, seed=6)
    topk = JSMA(0.5, gamma=0.2, search="topk")(_policy(), x)
    exhaustive = JSMA(0.5, gamma=0.2, search="exhaustive")(_policy(), x)
    assert torch.equal(topk.success, exhaustive.success)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(UserInputError, match="theta"):
        JSMA(0.0)
    with pytest.raises(UserInputError, match="gamma"):
        JSMA(1.0, gamma=0.0)
    with pytest.raises(UserInputError, match="search"):
        JSMA(1.0, search="greedy")
