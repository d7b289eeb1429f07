"""Observation attacks, one per file, over the small base in `base.py`."""

from __future__ import annotations

from rlattack.attacks.base import Attack, AttackResult, Norm, Surface, check_eps
from rlattack.attacks.fgsm import FGSM
from rlattack.attacks.jsma import JSMA
from rlattack.attacks.noise import Noise
from rlattack.attacks.pgd import PGD
from rlattack.attacks.targets import parse_target
from rlattack.errors import UserInputError

ATTACKS = ("none", "fgsm", "pgd", "jsma", "noise")


def build_attack(
    name: str,
    eps: float,
    norm: Norm = "inf",
    surface: Surface = "stack",
    quantize: bool = False,
    seed: int = 0,
    *,
    target: str | None = None,
    steps: int = 10,
    step_size: float | None = None,
    theta: float = 1.0,
    gamma: float = 0.1,
) -> Attack | None:
    """The attack a command line or config names; `none` is the clean baseline.

    `target` (`least-likely`, `random`, `action:K`) makes FGSM / PGD targeted and picks JSMA's
    targets (JSMA defaults to least-likely). `steps` / `step_size` are PGD's; `theta` / `gamma`
    JSMA's, which ignores eps and norm.
    """
    check_eps(eps)
    rule = None if target is None else parse_target(target, seed)
    if name == "none":
        return None
    if name == "fgsm":
        return FGSM(eps, norm, surface, quantize, target=rule)
    if name == "pgd":
        return PGD(eps, norm, steps, step_size, surface=surface, quantize=quantize, target=rule, seed=seed)
    if name == "jsma":
        return JSMA(theta, gamma, rule or parse_target("least-likely"), surface, quantize)
    if name == "noise":
        return Noise(eps, norm, surface, quantize, seed=seed)
    raise UserInputError(f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}")


__all__ = ["ATTACKS", "FGSM", "JSMA", "PGD", "Attack", "AttackResult", "Noise", "build_attack"]
