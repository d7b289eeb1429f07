"""PGD: stays in the eps-ball and [0, 1], reduces to FGSM, beats it."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlattack.attacks import FGSM, PGD
from rlattack.attacks.targets import least_likely
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from tests.conftest import SMALL_SHAPE, tiny_net


def _policy() -> Policy:
    return Policy(tiny_net().double(), 3, SMALL_SHAPE, input_scale=1.0)


@settings(max_examples=30, deadline=None)
@given(
    norm=st.sampled_from(["inf", "2"]),
    surface=st.sampled_from(["stack", "frame"]),
    eps=st.floats(0.0, 0.5),
    steps=st.integers(1, 6),
    seed=st.integers(0, 99),
)
def test_never_leaves_the_ball_or_the_unit_range(norm, surface, eps, steps, seed) -> None:
    x = torch.rand(4, *SMALL_SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    result = PGD(eps, norm, steps, step_size=eps, surface=surface, seed=seed)(_policy(), x)
    d = math.prod(SMALL_SHAPE) if surface == "stack" else math.prod(SMALL_SHAPE[1:])
    assert result.adv.min() >= 0 and result.adv.max() <= 1
    bound = result.linf if norm == "inf" else result.l2
    assert (bound <= (eps if norm == "inf" else eps * math.sqrt(d)) + 1e-9).all()
    if surface == "frame":
        assert torch.equal(result.adv[:, :-1], x[:, :-1])


@pytest.mark.parametrize("norm", ["inf", "2"])
@pytest.mark.parametrize("targeted", [False, True])
def test_one_step_of_size_eps_is_fgsm(norm, targeted) -> None:
    x = torch.rand(6, *SMALL_SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    rule = least_likely if targeted else None
    fgsm = FGSM(0.03, norm, target=rule)(_policy(), x)
    pgd = PGD(0.03, norm, steps=1, step_size=0.03, random_start=False, target=rule)(_policy(), x)
    assert torch.allclose(fgsm.adv, pgd.adv, atol=1e-12)
    assert torch.equal(fgsm.adv_action, pgd.adv_action)


def test_more_steps_fool_at_least_as_often_as_fgsm() -> None:
    x = torch.rand(64, *SMALL_SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    fgsm = FGSM(0.02)(_policy(), x).changed.float().mean()
    pgd = PGD(0.02, steps=20, step_size=0.005, random_start=False)(_policy(), x).changed.float().mean()
    assert pgd >= fgsm and pgd > 0


def test_random_start_is_seeded_and_batch_consistent_without_it() -> None:
    x = torch.rand(5, *SMALL_SHAPE, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a, b = (PGD(0.05, seed=7)(_policy(), x).adv for _ in range(2))
    assert torch.equal(a, b)
    attack = PGD(0.05, steps=5, random_start=False)
    batch = attack(_policy(), x)
    for i in range(len(x)):
        assert torch.allclose(batch.adv[i], attack(_policy(), x[i : i + 1]).adv[0], atol=1e-12)


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(UserInputError, match="inf and 2"):
        PGD(0.1, "1")
    with pytest.raises(UserInputError, match="at least one step"):
        PGD(0.1, steps=0)
