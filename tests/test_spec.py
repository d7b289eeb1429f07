"""`AttackSpec`: one declaration of an attack's settings for the CLI, grids and the API."""

from __future__ import annotations

import doctest

import pytest
import torch
from pydantic import ValidationError

import rlattack.attacks.spec
from rlattack.attacks import FGSM, JSMA, MAD, PGD, AttackSpec, Momentum, Noise, parse_eps
from rlattack.attacks.spec import DECLARED, OPTIONS
from rlattack.errors import UserInputError
from rlattack.grid.config import AttackEntry, Cell


def test_the_module_examples_run() -> None:
    assert doctest.testmod(rlattack.attacks.spec).failed == 0


@pytest.mark.parametrize(
    ("text", "eps"),
    [
        ("1/255", 1 / 255),
        ("4/255", 4 / 255),
        ("0.004", 0.004),
        (" 2 / 255", 2 / 255),
        ("1.5/255", 1.5 / 255),
        (0, 0.0),
    ],
)
def test_eps_is_a_number_or_gray_levels(text, eps) -> None:
    assert parse_eps(text) == eps  # exactly the float that 1 / 255 gives, so cell ids do not move


@pytest.mark.parametrize("bad", ["lots", "1/0", "nan", "inf", "2/255/3", "/255", "nan/255", -0.1, True, None])
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
    margin = AttackSpec(name="pgd", eps=0.1, loss="margin", target="least-likely").build()
    assert isinstance(margin, PGD) and margin.loss == "margin" and margin.targeted
    mad = AttackSpec(name="mad", eps="1/255", norm="2", steps=4, step_size=0.001, surface="frame")
    built = mad.build(seed=3)
    assert isinstance(built, MAD) and (built.eps, built.norm, built.steps) == (1 / 255, "2", 4)
    assert built.step_size == 0.001
    assert (built.seed, built.surface, built.targeted) == (3, "frame", False)
    momentum = AttackSpec(name="momentum", eps=0.1, decay=0.9, loss="margin", target="action:1").build()
    assert isinstance(momentum, Momentum) and momentum.targeted
    assert (momentum.decay, momentum.loss) == (0.9, "margin")
    assert momentum.step_size == pytest.approx(0.01)  # eps / steps, Dong et al.'s default


@pytest.mark.parametrize("name", ["pgd", "mad"])
def test_the_seed_fixes_the_random_start(tiny_policy, name) -> None:
    spec = AttackSpec(name=name, eps=0.1, steps=1)
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
        ({"name": "pgd", "loss": "hinge"}, "unknown loss 'hinge'; choose one of ce, margin, dlr"),
        ({"name": "momentum", "decay": -0.1}, "decay: Input should be greater than or equal to 0"),
        ({"name": "momentum", "decay": "inf"}, "decay: Input should be a finite number"),
        ({"name": "mad", "target": "least-likely"}, "mad is untargeted: it takes no target"),
        ({"name": "fgsm", "loss": "margin"}, "fgsm takes loss ce, not margin"),
        ({"name": "mad", "loss": "margin"}, "mad takes loss ce, not margin"),
        ({"name": "pgd", "loss": "dlr"}, "pgd takes loss ce or margin, not dlr"),
        ({"name": "pgd", "members": "fgsm"}, "members apply to the ensemble only"),
        ({"name": "pgd", "eot": 0}, "eot: Input should be greater than or equal to 1"),
        ({"name": "noise", "surrogate": "pong-dqn"}, "noise takes no surrogate"),
        ({"name": "square", "target": "random"}, "square takes no target"),
        ({"name": "apgd", "step_size": 0.1}, "apgd takes no step_size"),
    ],
)
def test_bad_settings_are_one_line(settings, message) -> None:
    with pytest.raises(UserInputError, match=message) as error:
        AttackSpec.parse(**settings)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("name", "cls"), [("pgd", "PGD"), ("mad", "MAD"), ("momentum", "Momentum")])
def test_an_attack_that_cannot_take_a_norm_is_refused_when_built(name, cls) -> None:
    with pytest.raises(UserInputError, match=f"{cls} supports norms inf and 2"):
        AttackSpec(name=name, eps=0.1, norm="1").build()


def test_labels_name_what_differs_from_the_defaults() -> None:
    assert AttackSpec().label() == "clean"
    assert AttackSpec(name="fgsm", eps=0.002).label() == "fgsm Linf eps=0.002"
    spec = AttackSpec(name="pgd", eps=0.004, steps=20, target="least-likely", quantize=True)
    assert spec.label("timed:0.8") == "pgd target=least-likely steps=20 Linf eps=0.004 quantize timed:0.8"
    assert spec.label(budget=False) == "pgd target=least-likely steps=20 quantize"
    assert AttackSpec(name="jsma", eps=0.3).label() == "jsma theta=1 gamma=0.1"  # JSMA's budget is its own
    assert AttackSpec(name="pgd", eps=0.004, loss="margin").label() == "pgd loss=margin Linf eps=0.004"
    assert AttackSpec(name="pgd", eps=0.004, loss="ce", decay=1.0).label() == "pgd Linf eps=0.004"  # defaults
    with pytest.raises(ValidationError, match="pgd takes no decay"):  # not PGD's option: refused
        AttackSpec(name="pgd", eps=0.004, decay=0.5)
    assert AttackSpec(name="mad", eps=0.004, steps=20).label() == "mad steps=20 Linf eps=0.004"
    momentum = AttackSpec(name="momentum", eps=0.004, norm="2", decay=0.5, loss="margin", target="random")
    assert momentum.label() == "momentum target=random loss=margin decay=0.5 L2 eps=0.004"
    assert AttackSpec(name="momentum", eps=0.004).label() == "momentum Linf eps=0.004"


def test_every_attack_option_is_a_field_and_a_grid_key() -> None:
    fields = AttackSpec.model_fields
    assert set(OPTIONS) <= set(fields) and all(set(d.options) <= set(OPTIONS) for d in DECLARED.values())
    entry = AttackEntry(name="momentum", eps=[0.1], loss="margin", decay=0.5)
    assert entry.options == {"decay": 0.5, "loss": "margin"}
    with pytest.raises(ValueError, match="mad is untargeted"):
        AttackEntry(name="mad", target="random")


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
