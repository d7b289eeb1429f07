"""Attacks by the names robustness evaluations report (ATLA, SA-PPO, PA-AD, AutoAttack), each an
`AttackSpec`'s settings without its budget: the robustness set and the ensemble pick from here.

`transfer` is crafted on another policy, the `surrogate`; "auto" stands for the one the
evaluation picks (another victim of the zoo for the same game), named in the cell it runs.
"""

from __future__ import annotations

from typing import Any

AUTO = "auto"
"""a surrogate the robustness evaluation chooses, by `rlattack.robustness.attack_set.surrogate_for`"""

PRESETS: dict[str, dict[str, Any]] = {
    "noise": {"name": "noise"},
    "fgsm": {"name": "fgsm"},
    "pgd": {"name": "pgd", "steps": 10},
    "pgd-margin": {"name": "pgd", "steps": 10, "loss": "margin"},
    "momentum": {"name": "momentum", "steps": 10},
    "apgd-ce": {"name": "apgd", "steps": 10, "loss": "ce"},
    "apgd-dlr": {"name": "apgd", "steps": 10, "loss": "dlr"},
    "mad": {"name": "mad", "steps": 10},
    "transfer": {"name": "apgd", "steps": 10, "loss": "ce", "surrogate": AUTO},
    "square": {"name": "square", "queries": 100},
}
"""Name -> settings, cheapest first (one forward pass; one gradient; ten; a surrogate's ten; up to
100 forward passes). PGD-10 at 1/255 is Zhang et al.'s attack on SA-DQN; APGD drops PGD's step
size; the margin, DLR and MAD losses expose what cross-entropy misses on defended networks;
transfer and Square need no gradient of the attacked policy, so hiding it does not stop them."""

BLACK_BOX = ("noise", "transfer", "square")
"""Members that never differentiate the attacked policy."""

ENSEMBLE_MEMBERS = ("apgd-ce", "noise", "fgsm", "pgd", "momentum", "apgd-dlr", "mad", "transfer", "square")
"""The ensemble's members in the order it tries them: APGD-CE first, as AutoAttack runs it first,
then the rest cheapest first. The first member that changes an action decides where the action
goes, and which wrong action it is matters more than the change itself: tried first, FGSM and
noise changed 96% of `pong-dqn-adv`'s actions at 1/255 and left it -11.4, where APGD-CE alone
changed 94% and left it -18.2 (experiments/robustness). With APGD-CE first the ensemble is, on
every step, at least as strong as APGD-CE. PGD with the margin loss is left out: APGD-DLR ascends
the same margin, scaled, with a step size that adapts."""
