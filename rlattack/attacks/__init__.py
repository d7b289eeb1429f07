"""Observation attacks, one per file, over the small base in `base.py`; `AttackSpec` names them."""

from __future__ import annotations

from rlattack.attacks.base import Attack, AttackResult, Loss, Norm, Surface, check_eps
from rlattack.attacks.fgsm import FGSM
from rlattack.attacks.jsma import JSMA
from rlattack.attacks.mad import MAD
from rlattack.attacks.momentum import Momentum
from rlattack.attacks.noise import Noise
from rlattack.attacks.pgd import PGD
from rlattack.attacks.spec import ATTACKS, AttackSpec, parse_eps

__all__ = [
    "ATTACKS",
    "FGSM",
    "JSMA",
    "MAD",
    "PGD",
    "Attack",
    "AttackResult",
    "AttackSpec",
    "Loss",
    "Momentum",
    "Noise",
    "Norm",
    "Surface",
    "check_eps",
    "parse_eps",
]
