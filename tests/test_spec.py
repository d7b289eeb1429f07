"""`AttackSpec`: one declaration of an attack's settings for the CLI, grids and the API."""

from __future__ import annotations

import doctest

import pytest
import torch

import rlattack.attacks.spec
from rlattack.attacks import FGSM, JSMA, PGD, AttackSpec, Noise, parse_eps
from rlattack.errors import UserInputError
from rlattack.grid.config import AttackEntry, Cell


def test_the_module_examples_run() -> None:
    assert doctest.testmod(rlattack.attacks.spec).failed == 0


@pytest.mark.parametrize(
    ("text", "eps"),
    [("1/255", 1 / 255), ("4/255", 4 / 255), ("0.004", 0.004), (" 2 / 255", 2 / 255), (0, 0.0)],
)
def test_eps_is_a_number_or_gray_levels(text, eps) -> None:
    assert parse_eps(text) == eps  # exactly the float that 1 / 255 gives, so cell ids do not move


@pytest.mark.parametrize("bad", ["lots", "1/0", "nan", "inf", -0.1, True, None])
def test_bad_eps_is_refused(bad) -> None:
    with pytest.raises(ValueError, match="eps"):
        parse_eps(bad)


def test_each_name_builds_its_attack_with_its_settings() -> None:
    pgd = AttackSpec(name="pgd", eps="2/255", norm="2", steps=3, step_size=0.01).build(seed=1)
    assert isinstance(pgd, PGD) and (pgd.eps, pgd.norm, pgd.steps, pgd.step_size) == (2 / 255, "2", 3, 0.01)
    fgsm = AttackSpec(name="fgsm", eps=0.1, target="action:2", surface="frame", quantize=True).build()
    assert isinstance(fgsm, FGSM) and fgsm.targeted and fgsm.surface == "frame" and fgsm.quantize
    jsma = AttackSpec(name="jsma", theta=-1, gamma=0.05).build()
    assert isinstance(jsma, JSMA) and jsma.targeted  # JSMA aims at the least-likely action by default
    assert isinstance(AttackSpec(name="noise", eps=0.1).build(), Noise)
    assert AttackSpec(name="none").build() is None


def test_the_seed_fixes_the_random_start(tiny_policy) -> None:
    spec = AttackSpec(name="pgd", eps=0.1, steps=1)
    x = torch.rand(2, *tiny_policy.obs_shape, dtype=torch.float64)
    first, again, other = (spec.build(seed=s)(tiny_policy, x).adv for s in (5, 5, 6))
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"name": "deepfool"}, "unknown attack 'deepfool'"),
        ({"norm": "3"}, "unknown norm '3'"),
        ({"surface": "pixel"}, "unknown surface 'pixel'"),
        ({"steps": 0}, "steps: Input should be greater than or equal to 1"),
        ({"gamma": 2}, "gamma: Input should be less than or equal to 1"),
        ({"target": "action:x"}, "bad target 'action:x'"),
        ({"wobble": 1}, "unknown key 'wobble'"),
    ],
)
def test_bad_settings_are_one_line(settings, message) -> None:
    with pytest.raises(UserInputError, match=message) as error:
        AttackSpec.parse(**settings)
    assert "\n" not in str(error.value)


def test_an_attack_that_cannot_take_a_norm_is_refused_when_built() -> None:
    with pytest.raises(UserInputError, match="PGD supports norms inf and 2"):
        AttackSpec(name="pgd", eps=0.1, norm="1").build()


def test_labels_name_what_differs_from_the_defaults() -> None:
    assert AttackSpec().label() == "clean"
    assert AttackSpec(name="fgsm", eps=0.002).label() == "fgsm Linf eps=0.002"
    spec = AttackSpec(name="pgd", eps=0.004, steps=20, target="least-likely", quantize=True)
    assert spec.label("timed:0.8") == "pgd target=least-likely steps=20 Linf eps=0.004 quantize timed:0.8"
    assert spec.label(budget=False) == "pgd target=least-likely steps=20 quantize"
    assert AttackSpec(name="jsma", eps=0.3).label() == "jsma theta=1 gamma=0.1"  # JSMA's budget is its own


def test_a_grid_entry_and_its_cell_are_the_same_attack_as_eval_builds() -> None:
    entry = AttackEntry(name="pgd", eps=["1/255"], steps=20)
    assert entry.options == {"steps": 20} and entry.eps == [1 / 255]
    cell = Cell(
        game="pong", agent="a", attack="pgd", options=entry.options, norm="2", eps=entry.eps[0],
        schedule="every", seed=0, episodes=1, envs=1, surface="frame", quantize=True,
    )  # fmt: skip
    assert cell.spec == AttackSpec(
        name="pgd", eps="1/255", norm="2", steps=20, surface="frame", quantize=True
    )
    with pytest.raises(ValueError, match="does not take surface"):
        AttackEntry(name="pgd", surface="frame")  # a grid-wide setting, not an entry's
