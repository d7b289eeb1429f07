"""One attack's settings, declared once: typed, validated, built and labelled in one place.

The command line, the grid's config and the Python API all describe an attack with an
`AttackSpec`, so an option added here is available everywhere, checked the same way, and named
the same way in tables and plots.

Example:
    >>> spec = AttackSpec(name="pgd", eps="1/255", steps=10)
    >>> round(spec.eps * 255, 6), spec.label()
    (1.0, 'pgd Linf eps=0.00392157')
    >>> AttackSpec().build() is None  # `none` is the clean baseline
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rlattack.attacks.apgd import APGD
from rlattack.attacks.base import NORMS, SURFACES, Attack, Norm, Surface, TargetRule
from rlattack.attacks.ensemble import Ensemble
from rlattack.attacks.fgsm import FGSM
from rlattack.attacks.jsma import JSMA
from rlattack.attacks.mad import MAD
from rlattack.attacks.momentum import Momentum
from rlattack.attacks.noise import Noise
from rlattack.attacks.pgd import PGD
from rlattack.attacks.presets import AUTO, ENSEMBLE_MEMBERS, PRESETS
from rlattack.attacks.square import Square
from rlattack.attacks.targets import parse_target
from rlattack.attacks.transfer import Transfer
from rlattack.errors import UserInputError, explain


@dataclass(frozen=True)
class Declared:
    """Everything the library knows of one attack: how to build it from a spec, the options it
    takes (in the order labels show them), and the losses it can ascend. Adding an attack is one
    entry of `DECLARED` (and, to name a setting of it for robustness evaluations, one line of
    `rlattack.attacks.presets`)."""

    build: Callable[[AttackSpec, int, TargetRule | None, dict[str, Any]], Attack]
    """(spec, seed, target rule, {surface, quantize}) -> the attack"""
    options: tuple[str, ...] = ()
    losses: tuple[str, ...] = ("ce",)


def _iterative(spec: AttackSpec, common: dict[str, Any]) -> dict[str, Any]:
    return {"steps": spec.steps, "step_size": spec.step_size, **common}


DECLARED: dict[str, Declared] = {
    "fgsm": Declared(
        lambda s, seed, rule, c: FGSM(s.eps, s.norm, target=rule, **c), ("target", "surrogate", "eot")
    ),
    "pgd": Declared(
        lambda s, seed, rule, c: PGD(s.eps, s.norm, target=rule, seed=seed, loss=s.loss, **_iterative(s, c)),
        ("target", "steps", "step_size", "loss", "surrogate", "eot"),
        ("ce", "margin"),
    ),
    "jsma": Declared(
        lambda s, seed, rule, c: JSMA(s.theta, s.gamma, rule or parse_target("least-likely"), **c),
        ("target", "eot"),
    ),
    "noise": Declared(lambda s, seed, rule, c: Noise(s.eps, s.norm, seed=seed, **c), ("eot",)),
    "mad": Declared(
        lambda s, seed, rule, c: MAD(s.eps, s.norm, seed=seed, **_iterative(s, c)),
        ("steps", "step_size", "surrogate", "eot"),
    ),
    "momentum": Declared(
        lambda s, seed, rule, c: Momentum(
            s.eps, s.norm, decay=s.decay, target=rule, loss=s.loss, **_iterative(s, c)
        ),
        ("target", "steps", "step_size", "loss", "decay", "surrogate", "eot"),
        ("ce", "margin"),
    ),
    "apgd": Declared(
        lambda s, seed, rule, c: APGD(s.eps, s.norm, s.steps, s.loss, target=rule, seed=seed, **c),  # type: ignore[arg-type]
        ("target", "steps", "loss", "surrogate", "eot"),
        ("ce", "dlr"),
    ),
    "square": Declared(
        lambda s, seed, rule, c: Square(s.eps, s.norm, s.queries, seed=seed, **c), ("queries", "eot")
    ),
    "ensemble": Declared(
        lambda s, seed, rule, c: Ensemble([m.build(seed) for m in s.ensemble_members()]),  # type: ignore[misc]
        ("members", "surrogate", "eot"),
    ),
}
"""Every attack by name; `none` (the clean baseline) is not one."""

ATTACKS: tuple[str, ...] = ("none", *DECLARED)
AttackName = Literal[ATTACKS]  # type: ignore[valid-type]
"""The names as a type, so the command line offers them as choices."""
LOSSES = ("ce", "margin", "dlr")

OPTIONS = (*dict.fromkeys(option for d in DECLARED.values() for option in d.options), "theta", "gamma")
"""Settings of particular attacks (a grid entry's own keys; JSMA's theta and gamma show in its
label on their own); the rest are every attack's."""


def parse_eps(value: Any) -> float:
    """A budget as a number or as a fraction of gray levels such as "2/255" or "1.5/255", in
    [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"eps must be a number, got {value!r}")
    try:
        eps = float(value)
    except ValueError:
        num, _, den = value.replace(" ", "").partition("/")
        try:
            eps = float(num) / float(den)  # without a "/", float("") refuses it
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"eps {value!r} is not a number or a fraction like 2/255") from None
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0, got {value!r}")
    if eps > 1:  # a larger budget changes nothing more, yet would be recorded as asked
        raise ValueError(
            f"eps {value!r} is above 1: budgets are on the [0, 1] scale (pixels / 255) in every norm "
            "(L2 and L1 per feature too), where 1 already allows any change"
        )
    return eps


def _choice(kind: str, allowed: tuple[str, ...]) -> BeforeValidator:
    """A one-of check whose message lists what is allowed (YAML reads `2` as an int: compare text)."""

    def check(value: Any) -> str:
        if str(value) not in allowed:
            raise ValueError(f"unknown {kind} {str(value)!r}; choose one of {', '.join(allowed)}")
        return str(value)

    return BeforeValidator(check)


Eps = Annotated[float, BeforeValidator(parse_eps)]
NormName = Annotated[Norm, _choice("norm", NORMS)]


class AttackSpec(BaseModel):
    """An observation attack as a user names it; `build` makes it, `label` names it.

    Args:
        name: none (the clean baseline), fgsm, pgd, jsma, noise, mad (Zhang et al. 2020's maximal
            action difference, untargeted), momentum (Dong et al. 2018's MI-FGSM), apgd (Croce &
            Hein 2020's step-size-free PGD), square (Andriushchenko et al. 2020's gradient-free
            random search) or ensemble (its members tried on each observation in turn).
        eps: budget on the [0, 1] scale, a number or "k/255" (one gray level is 1/255).
        norm: inf, 2 or 1 (see `rlattack.attacks.base.norm_step` for the units).
        surface: stack (the whole stacked observation) or frame (the newest frame only).
        quantize: round attacked observations to uint8 gray levels.
        target: least-likely, random, action:K or policy:AGENT; makes FGSM, PGD and momentum
            targeted and picks JSMA's targets (JSMA's default: least-likely); MAD takes none.
        steps, step_size: iterations and per-step budget of PGD, MAD and momentum (default
            2.5 * eps / steps for PGD and MAD, eps / steps for momentum).
        loss: ce or margin for PGD and momentum (a margin of Q-values does not saturate the way
            a softmax cross-entropy does); ce or dlr for apgd (DLR: scale-free, >= 3 actions).
        decay: momentum's mu, the weight of its past velocity (>= 0).
        theta, gamma: JSMA's change per feature and largest fraction of features changed.
        queries: Square's most forward passes per observation.
        members: the ensemble's attacks, names of `rlattack.attacks.presets`, comma-separated,
            tried in that order (default: `ENSEMBLE_MEMBERS`, APGD-CE first).
        surrogate: an agent to craft the attack on instead (a transfer attack); the ensemble
            passes it to its `transfer` member.
        eot: craft on the mean of this many draws of a randomised policy (Athalye et al.'s EOT).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[AttackName, _choice("attack", ATTACKS)] = Field(
        default="none", description="the attack; none is the clean baseline, mad is untargeted"
    )
    eps: Eps = Field(
        default=0.0, description="budget on the [0, 1] scale, a number or k/255 (1/255 = one gray level)"
    )
    norm: NormName = Field(default="inf", description="inf, 2 or 1")
    surface: Annotated[Surface, _choice("surface", SURFACES)] = Field(
        default="stack", description="stack (whole observation) or frame (newest frame)"
    )
    quantize: bool = Field(default=False, description="round attacked frames to uint8 gray levels")
    target: str | None = Field(
        default=None,
        description="least-likely, random, action:K or policy:AGENT: makes fgsm/pgd/momentum targeted",
    )
    steps: int = Field(default=10, ge=1, description="steps of pgd, mad and momentum")
    step_size: float | None = Field(
        default=None,
        gt=0,
        description="step size of pgd, mad, momentum (default 2.5 * eps / steps; momentum eps / steps)",
    )
    loss: Annotated[Literal["ce", "margin", "dlr"], _choice("loss", LOSSES)] = Field(
        default="ce", description="pgd, momentum: ce or margin (max other Q - own Q); apgd: ce or dlr"
    )
    decay: float = Field(default=1.0, ge=0, allow_inf_nan=False, description="momentum's decay mu (>= 0)")
    theta: float = Field(default=1.0, description="JSMA change per feature on the [0, 1] scale (< 0 darkens)")
    gamma: float = Field(default=0.1, gt=0, le=1, description="JSMA largest fraction of features changed")
    queries: int = Field(default=100, ge=1, description="square: most forward passes per observation")
    members: str | None = Field(
        default=None, description="ensemble: attacks tried in turn, comma-separated (default: all)"
    )
    surrogate: str | None = Field(default=None, description="craft on this agent instead (transfer)")
    eot: int = Field(default=1, ge=1, description="average gradients over this many draws (EOT)")

    @field_validator("target")
    @classmethod
    def _target_is_a_rule(cls, value: str | None) -> str | None:
        kind, _, arg = (value or "least-likely").partition(":")
        if kind in ("least-likely", "random") and not arg:
            return value
        if (kind == "action" and arg.isdigit()) or (kind == "policy" and arg):
            return value
        raise ValueError(f"bad target {value!r}: use least-likely, random, action:K or policy:AGENT")

    @model_validator(mode="after")
    def _options_fit_the_attack(self) -> AttackSpec:
        if self.name == "mad" and self.target is not None:
            raise ValueError("mad is untargeted: it takes no target")
        allowed = DECLARED[self.name].losses if self.name in DECLARED else ("ce",)
        if self.loss not in allowed:
            raise ValueError(f"{self.name} takes loss {' or '.join(allowed)}, not {self.loss}")
        if self.members is not None and self.name != "ensemble":
            raise ValueError("members apply to the ensemble only")
        declared = set(DECLARED[self.name].options) if self.name in DECLARED else set()
        declared |= {"theta", "gamma"} if self.name == "jsma" else set()
        fields = type(self).model_fields
        ignored = [k for k in OPTIONS if k not in declared and getattr(self, k) != fields[k].default]
        if ignored:
            raise ValueError(f"{self.name} takes no {', '.join(ignored)} (it would be ignored)")
        if self.surrogate is not None and (self.name in ("none", "noise", "square", "jsma") or self.target):
            raise ValueError(f"a surrogate needs an untargeted gradient attack, not {self.name}")
        for member in self.member_names():
            if member not in PRESETS:
                raise ValueError(f"unknown ensemble member {member!r}; choose from {', '.join(PRESETS)}")
        return self

    def member_names(self) -> list[str]:
        """The ensemble's members in the order it tries them (none for other attacks)."""
        if self.name != "ensemble":
            return []
        text = self.members or ",".join(ENSEMBLE_MEMBERS)
        return list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))

    @classmethod
    def parse(cls, **settings: Any) -> AttackSpec:
        """Validate settings as a user wrote them; any problem is one `UserInputError` line."""
        try:
            return cls(**settings)
        except ValidationError as e:
            raise UserInputError(explain(e, allowed=cls.model_fields)) from None

    def with_eps(self, eps: Any) -> AttackSpec:
        """The same attack at another budget (validated)."""
        return AttackSpec.parse(**(self.model_dump() | {"eps": eps}))

    def build(self, seed: int = 0) -> Attack | None:
        """The attack, its random parts (PGD's and MAD's starts, noise, random targets) seeded by
        `seed`; None for the clean baseline. Bad combinations (PGD in L1, say) raise `UserInputError`."""
        attack = self._build(seed)
        if attack is not None:
            attack.eot = self.eot
        return attack

    def _build(self, seed: int) -> Attack | None:
        if self.surrogate == AUTO and self.name != "ensemble":
            raise UserInputError("surrogate 'auto' is chosen by `rlattack robustness`: name an agent")
        if self.surrogate is not None and self.name != "ensemble":
            from rlattack.loading import load_policy

            inner = self.model_copy(update={"surrogate": None, "eot": 1})._build(seed)
            return Transfer(inner, load_policy(self.surrogate))  # type: ignore[arg-type]
        if self.name == "none":
            return None
        rule = None if self.target is None else parse_target(self.target, seed)
        return DECLARED[self.name].build(
            self, seed, rule, {"surface": self.surface, "quantize": self.quantize}
        )

    def ensemble_members(self) -> list[AttackSpec]:
        """The ensemble's members as specs at its budget; `transfer` only with a named surrogate."""
        shared = {"eps": self.eps, "norm": self.norm, "surface": self.surface, "quantize": self.quantize}
        members = []
        for name in self.member_names():
            settings = PRESETS[name] | shared
            if settings.get("surrogate") == AUTO:
                if self.surrogate in (None, AUTO):
                    continue
                settings["surrogate"] = self.surrogate
            members.append(AttackSpec.parse(**settings))
        return members

    def options(self) -> dict[str, Any]:
        """The attack-specific settings that matter to this attack and differ from their defaults."""
        fields = type(self).model_fields
        used = DECLARED[self.name].options if self.name in DECLARED else ()
        return {k: getattr(self, k) for k in used if getattr(self, k) != fields[k].default}

    def label(self, schedule: str = "every", budget: bool = True) -> str:
        """A short name for tables and plots, e.g. `pgd steps=20 Linf eps=0.004 timed:0.8`.

        `budget=False` leaves out the norm and eps, for plots that show them on an axis or panel.
        """
        if self.name == "none":
            return "clean"
        parts = [
            self.name,
            *(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.options().items()),
        ]
        if self.name == "jsma":
            parts.append(f"theta={self.theta:g} gamma={self.gamma:g}")
        elif budget:
            parts.append(f"L{self.norm} eps={self.eps:g}")
        parts += [x for x in (self.surface == "frame" and "surface=frame", self.quantize and "quantize") if x]
        return " ".join(parts + ([schedule] if schedule != "every" else []))
