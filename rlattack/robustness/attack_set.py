"""The attack set of a robustness evaluation, by the names ATLA, SA-PPO, PA-AD and AutoAttack report.

One attack is an upper bound on robustness, not a measurement: the set's worst case at each eps
is. Each name is a preset of `rlattack.attacks.presets` (an `AttackSpec` without its budget; the
budget is the eps axis), or `ensemble`, which tries the others on each observation in turn.
"""

from __future__ import annotations

from typing import Any

from rlattack import zoo
from rlattack.attacks.presets import AUTO, BLACK_BOX, ENSEMBLE_MEMBERS, PRESETS
from rlattack.attacks.spec import AttackSpec
from rlattack.errors import UserInputError
from rlattack.policies import Policy, weights_digest

ATTACK_SET: dict[str, dict[str, Any]] = PRESETS | {
    "ensemble": {"name": "ensemble", "surrogate": AUTO, "members": ",".join(ENSEMBLE_MEMBERS)},
}
"""Name -> the attack's settings (`surrogate: auto` is filled in by `with_surrogate`)."""

DEFAULT_SET = ("apgd-ce", "apgd-dlr", "square", "transfer", "noise", "ensemble")
"""APGD-CE and APGD-DLR replace PGD-10 and PGD-10 with the margin loss: the same ten gradient
steps, without a step size to get wrong, and DLR is blind to the scale of the outputs, as the
margin is. MAD does not play alone: it ascends a divergence from the clean action distribution,
as APGD-CE ascends the clean action's cross-entropy, and on none of the six Pong victims was it
the lowest of the set (experiments/robustness), while its games cost as much as APGD-CE's.
MAD, PGD-10, MI-FGSM and FGSM still run inside the ensemble, whose members are the presets,
APGD-CE first (`ENSEMBLE_MEMBERS`); `--attacks mad,...` plays them alone."""

WHITE_BOX = tuple(name for name in ATTACK_SET if name not in (*BLACK_BOX, "ensemble"))


def parse_attack_set(text: str) -> list[str]:
    """`apgd-ce,mad,...` as written on the command line, each name once, in the order given."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in ATTACK_SET]
    if unknown or not names:
        raise UserInputError(
            f"unknown attacks {', '.join(unknown) or '(none given)'}: choose from {', '.join(ATTACK_SET)}"
        )
    return names


def grid_entry(name: str, surrogate: str | None = None) -> dict[str, Any]:
    """The attack as an entry of a grid's `attacks`, its `auto` surrogate replaced by `surrogate`
    (the ensemble then leaves out its transfer member where there is none)."""
    entry = dict(ATTACK_SET[name])
    if entry.get("surrogate") == AUTO:
        if surrogate is not None:
            entry["surrogate"] = surrogate
        elif name == "ensemble":
            del entry["surrogate"]
        else:
            raise UserInputError(f"{name} needs a surrogate, and there is none")
    return entry


def name_of(attack: str, options: dict[str, Any]) -> str | None:
    """The set's name of a grid cell's attack, None if it is none of them (any surrogate and any
    EOT count: they are settings of the evaluation, not of the attack)."""
    cell = _generic(AttackSpec.parse(name=attack, **options))
    for name, settings in ATTACK_SET.items():
        preset = _generic(AttackSpec.parse(**settings))
        if cell in (preset, preset.model_copy(update={"surrogate": None})):
            return name
    return None


def _generic(spec: AttackSpec) -> AttackSpec:
    return spec.model_copy(update={"surrogate": AUTO if spec.surrogate else None, "eot": 1, "members": None})


def surrogate_for(policy: Policy, game: str) -> str | None:
    """The zoo victim to craft transfer attacks on: one of `game` that is not `policy` (by weights
    digest), preferring one that outputs the same kind of values, was not trained to resist attacks
    (a defended surrogate's attacks transfer less), meets its clean bar and is not fine-tuned from
    another; None if the zoo has none for the game."""
    own = weights_digest(policy)
    found = []
    for v in zoo.victims():
        if v.game != game or v.n_actions != policy.n_actions:
            continue
        candidate = zoo.load_victim(v.name)
        if weights_digest(candidate) == own:
            continue
        rank = (
            candidate.outputs != policy.outputs,
            v.defended,
            not v.meets_bar,
            "init_from" in v.meta,
            v.name,
        )
        found.append((rank, v.name))
    return min(found)[1] if found else None
