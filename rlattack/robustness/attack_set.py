"""The attack set of a robustness evaluation, by the names ATLA, SA-PPO and PA-AD report.

One attack is an upper bound on robustness, not a measurement: the set's worst case at each eps
is. Each name is an `AttackSpec` without its budget; the budget is the eps axis.
"""

from __future__ import annotations

from typing import Any

from rlattack.attacks.spec import AttackSpec
from rlattack.errors import UserInputError

ATTACK_SET: dict[str, dict[str, Any]] = {
    "pgd": {"name": "pgd", "steps": 10},
    "pgd-margin": {"name": "pgd", "steps": 10, "loss": "margin"},
    "mad": {"name": "mad", "steps": 10},
    "momentum": {"name": "momentum", "steps": 10},
    "fgsm": {"name": "fgsm"},
    "noise": {"name": "noise"},
}
"""Name -> the attack's settings. PGD-10 at 1/255 is Zhang et al.'s attack on SA-DQN; the margin
loss and MAD (with its random start) expose what cross-entropy misses on defended networks."""

DEFAULT_SET = ("pgd", "pgd-margin", "mad", "momentum", "noise")


def parse_attack_set(text: str) -> list[str]:
    """`pgd,mad,...` as written on the command line, each name once, in the order given."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in ATTACK_SET]
    if unknown or not names:
        raise UserInputError(
            f"unknown attacks {', '.join(unknown) or '(none given)'}: choose from {', '.join(ATTACK_SET)}"
        )
    return names


def grid_entry(name: str) -> dict[str, Any]:
    """The attack as an entry of a grid's `attacks` (settings other than the name are options)."""
    return dict(ATTACK_SET[name])


def name_of(attack: str, options: dict[str, Any]) -> str | None:
    """The set's name of a grid cell's attack, None if it is none of them."""
    cell = AttackSpec.parse(name=attack, **options)
    for name, settings in ATTACK_SET.items():
        if AttackSpec.parse(**settings) == cell:
            return name
    return None
