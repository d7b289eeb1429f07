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
from fractions import Fraction
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rlattack.attacks.base import LOSSES, Attack
from rlattack.attacks.fgsm import FGSM
from rlattack.attacks.jsma import JSMA
from rlattack.attacks.mad import MAD
from rlattack.attacks.momentum import Momentum
from rlattack.attacks.noise import Noise
from rlattack.attacks.pgd import PGD
from rlattack.attacks.targets import parse_target
from rlattack.errors import UserInputError, explain

AttackName = Literal["none", "fgsm", "pgd", "jsma", "noise", "mad", "momentum"]
ATTACKS: tuple[str, ...] = get_args(AttackName)
NORMS = ("inf", "2", "1")

OPTIONS = ("target", "steps", "step_size", "loss", "decay", "theta", "gamma")
"""Settings of particular attacks (a grid entry's own keys); the rest are every attack's."""

USED: dict[str, tuple[str, ...]] = {
    "fgsm": ("target",),
    "pgd": ("target", "steps", "step_size", "loss"),
    "mad": ("steps", "step_size"),
    "momentum": ("target", "steps", "step_size", "loss", "decay"),
    "jsma": ("target",),
}
"""Which of `OPTIONS` each attack takes, in the order labels show them."""


def parse_eps(value: Any) -> float:
    """A budget as a number or as a fraction of gray levels such as "2/255", in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"eps must be a number, got {value!r}")
    try:
        eps = float(value)
    except ValueError:
        try:
            eps = float(Fraction(value.replace(" ", "")))
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
NormName = Annotated[Literal["inf", "2", "1"], _choice("norm", NORMS)]


class AttackSpec(BaseModel):
    """An observation attack as a user names it; `build` makes it, `label` names it.

    Args:
        name: none (the clean baseline), fgsm, pgd, jsma, noise, mad (Zhang et al. 2020's maximal
            action difference, untargeted) or momentum (Dong et al. 2018's MI-FGSM).
        eps: budget on the [0, 1] scale, a number or "k/255" (one gray level is 1/255).
        norm: inf, 2 or 1 (see `rlattack.attacks.base.norm_step` for the units).
        surface: stack (the whole stacked observation) or frame (the newest frame only).
        quantize: round attacked observations to uint8 gray levels.
        target: least-likely, random, action:K or policy:AGENT; makes FGSM, PGD and momentum
            targeted and picks JSMA's targets (JSMA's default: least-likely); MAD takes none.
        steps, step_size: iterations and per-step budget of PGD, MAD and momentum (default
            2.5 * eps / steps for PGD and MAD, eps / steps for momentum).
        loss: ce or margin, for PGD and momentum: a margin of Q-values does not saturate the
            way a softmax cross-entropy does.
        decay: momentum's mu, the weight of its past velocity (>= 0).
        theta, gamma: JSMA's change per feature and largest fraction of features changed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[AttackName, _choice("attack", ATTACKS)] = Field(
        default="none", description="the attack; none is the clean baseline, mad is untargeted"
    )
    eps: Eps = Field(
        default=0.0, description="budget on the [0, 1] scale, a number or k/255 (1/255 = one gray level)"
    )
    norm: NormName = Field(default="inf", description="inf, 2 or 1")
    surface: Annotated[Literal["stack", "frame"], _choice("surface", ("stack", "frame"))] = Field(
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
    loss: Annotated[Literal["ce", "margin"], _choice("loss", LOSSES)] = Field(
        default="ce", description="pgd and momentum: ce (cross-entropy) or margin (max other Q - own Q)"
    )
    decay: float = Field(default=1.0, ge=0, allow_inf_nan=False, description="momentum's decay mu (>= 0)")
    theta: float = Field(default=1.0, description="JSMA change per feature on the [0, 1] scale (< 0 darkens)")
    gamma: float = Field(default=0.1, gt=0, le=1, description="JSMA largest fraction of features changed")

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
        if self.loss != "ce" and self.name not in ("pgd", "momentum"):
            raise ValueError(f"loss {self.loss} applies to pgd and momentum, not {self.name}")
        return self

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
        rule = None if self.target is None else parse_target(self.target, seed)
        common = {"surface": self.surface, "quantize": self.quantize}
        iterative = {"steps": self.steps, "step_size": self.step_size, **common}
        if self.name == "fgsm":
            return FGSM(self.eps, self.norm, target=rule, **common)
        if self.name == "pgd":
            return PGD(self.eps, self.norm, target=rule, seed=seed, loss=self.loss, **iterative)
        if self.name == "mad":
            return MAD(self.eps, self.norm, seed=seed, **iterative)
        if self.name == "momentum":
            return Momentum(self.eps, self.norm, decay=self.decay, target=rule, loss=self.loss, **iterative)
        if self.name == "jsma":
            return JSMA(self.theta, self.gamma, rule or parse_target("least-likely"), **common)
        if self.name == "noise":
            return Noise(self.eps, self.norm, seed=seed, **common)
        return None

    def options(self) -> dict[str, Any]:
        """The attack-specific settings that matter to this attack and differ from their defaults."""
        fields = type(self).model_fields
        return {k: getattr(self, k) for k in USED.get(self.name, ()) if getattr(self, k) != fields[k].default}

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
