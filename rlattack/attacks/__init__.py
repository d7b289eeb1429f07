"""Observation attacks, one per file, over the small base in `base.py`."""

from __future__ import annotations

from rlattack.attacks.base import Attack, AttackResult, Norm, Surface, check_eps
from rlattack.attacks.fgsm import FGSM
from rlattack.attacks.noise import Noise
from rlattack.errors import UserInputError

ATTACKS = ("none", "fgsm", "noise")


def build_attack(
    name: str,
    eps: float,
    norm: Norm = "inf",
    surface: Surface = "stack",
    quantize: bool = False,
    seed: int = 0,
) -> Attack | None:
    """The attack a command line or config names; `none` is the clean baseline."""
    check_eps(eps)
    if name == "none":
        return None
    if name == "fgsm":
        return FGSM(eps, norm, surface, quantize)
    if name == "noise":
        return Noise(eps, norm, surface, quantize, seed=seed)
    raise UserInputError(f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}")


__all__ = ["ATTACKS", "FGSM", "Attack", "AttackResult", "Noise", "build_attack"]
