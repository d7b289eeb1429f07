"""The per-step ensemble and the transfer attack: at least as strong as every member on each
observation, the closest miss where none changes the action, and crafted on the surrogate only."""

from __future__ import annotations

import pytest
import torch

from rlattack.attacks import FGSM, PGD
from rlattack.attacks.apgd import APGD
from rlattack.attacks.base import margin
from rlattack.attacks.ensemble import Ensemble
from rlattack.attacks.noise import Noise
from rlattack.attacks.presets import ENSEMBLE_MEMBERS, PRESETS
from rlattack.attacks.spec import AttackSpec
from rlattack.attacks.transfer import Transfer
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from tests.conftest import SMALL_SHAPE, assert_in_ball_and_range, small_batch, small_policy, tiny_net


def members(eps: float) -> list:
    """Deterministic members, so each gives the same result on a subset as on the whole batch."""
    return [FGSM(eps), PGD(eps, steps=5, random_start=False), APGD(eps, steps=5, random_start=False)]


def test_the_ensemble_changes_every_action_any_member_changes() -> None:
    x, policy = small_batch(1, n=48), small_policy()
    alone = torch.stack([m(policy, x).changed for m in members(0.03)])
    ensemble = Ensemble(members(0.03))(policy, x)
    assert 0 < alone.any(0).float().mean() < 1  # some changed, some not: the test can tell
    assert torch.equal(ensemble.changed, alone.any(0))
    assert_in_ball_and_range(ensemble, x, 0.03, "inf", "stack")


def test_where_no_member_changes_the_action_it_keeps_the_closest_miss() -> None:
    x, policy = small_batch(2, n=48), small_policy()
    results = [m(policy, x) for m in members(0.01)]
    ensemble = Ensemble(members(0.01))(policy, x)
    label = results[0].clean_action
    gaps = torch.stack([-margin(r.adv_logits, label) for r in results])
    missed = ~torch.stack([r.changed for r in results]).any(0)
    assert missed.any()
    assert torch.allclose(-margin(ensemble.adv_logits, label)[missed], gaps.min(0).values[missed])


def test_later_members_see_only_the_unchanged_samples() -> None:
    seen = []

    class Recording(FGSM):
        def perturb(self, policy, x, mask, target):
            seen.append(len(x))
            return super().perturb(policy, x, mask, target)

    x = small_batch(3, n=32)
    first = FGSM(0.03)(small_policy(), x).changed
    Ensemble([Recording(0.03), Recording(0.03)])(small_policy(), x)
    assert seen == [32, int((~first).sum())]


def test_the_default_ensemble_tries_presets_and_needs_a_surrogate_for_transfer() -> None:
    assert set(ENSEMBLE_MEMBERS) <= set(PRESETS)
    spec = AttackSpec.parse(name="ensemble", eps=0.01)
    assert len(spec.ensemble_members()) == len(ENSEMBLE_MEMBERS) - 1  # no surrogate: no transfer
    with_one = spec.model_copy(update={"surrogate": "pong-dqn"}).ensemble_members()
    assert [m.surrogate for m in with_one].count("pong-dqn") == 1


def test_a_transfer_attack_is_crafted_on_the_surrogate_alone() -> None:
    x = small_batch(4, n=16)
    target, surrogate = small_policy(), Policy(tiny_net(seed=5).double(), 3, SMALL_SHAPE, input_scale=1.0)
    moved = Transfer(FGSM(0.05), surrogate)(target, x)
    assert torch.allclose(moved.adv, FGSM(0.05)(surrogate, x).adv)
    assert torch.equal(moved.clean_logits, target(x))
    with pytest.raises(UserInputError, match="does not fit"):
        Transfer(FGSM(0.05), Policy(tiny_net(4).double(), 4, SMALL_SHAPE, input_scale=1.0))(target, x)


def test_an_ensemble_of_mixed_budgets_is_refused() -> None:
    with pytest.raises(UserInputError, match="one eps, norm and surface"):
        Ensemble([FGSM(0.01), Noise(0.02)])
    with pytest.raises(UserInputError, match="unknown ensemble member 'cw'"):
        AttackSpec.parse(name="ensemble", eps=0.01, members="pgd,cw")
