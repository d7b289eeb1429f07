"""What `rlattack robustness` measures, as the command line and the Python API give it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rlattack.attacks.spec import parse_eps
from rlattack.robustness.attack_set import DEFAULT_SET, parse_attack_set

EOT_DRAWS = 8
"""Draws per gradient where the policy's outputs are random and no --eot is given."""
STATE_EVERY = 8
"""Certified states are every 8th step of the agent's clean play, so they span whole games."""
SMOOTHED_DRAWS = 32
"""Noise draws per step of the smoothed policy when it plays for its clean return."""
SMOOTHING_DRAWS = 1000
"""Noise draws per state that certify it (Cohen et al.'s n; alpha 0.001)."""
LARGE_EPS = 32 / 255
"""The large-eps check's budget, played by APGD-CE where the user's list stops below it."""


class RobustnessSettings(BaseModel):
    """What `rlattack robustness` measures (the agent and its games come with them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    eps: list[str] = Field(description="L-inf budgets, numbers or k/255; repeat the option")
    attacks: str = Field(default=",".join(DEFAULT_SET), description="the attack set, comma-separated")
    certify: Literal["ibp", "smoothing", "none"] = Field(
        default="ibp", description="certified action rate: ibp (L-inf), smoothing (L2, Cohen et al.) or none"
    )
    states: int = Field(
        default=500, ge=1, le=100_000, description="states of the agent's clean play to certify"
    )
    sigma: float = Field(default=0.25, gt=0, description="smoothing noise (std on the [0, 1] scale)")
    find_eps: bool = Field(default=False, description="search the smallest eps that breaks the policy")
    tolerance: str = Field(default="1/1020", description="the search's tolerance (a quarter gray level)")
    threshold: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="the return that counts as broken (default: halfway from clean to random)",
    )
    surrogate: str | None = Field(
        default=None, description="agent to craft the transfer attack on (default: another zoo victim)"
    )
    eot: int | None = Field(
        default=None,
        ge=1,
        description=f"gradient draws per step (default: {EOT_DRAWS} if outputs are random)",
    )

    @field_validator("attacks")
    @classmethod
    def _attacks_are_known(cls, value: str) -> str:
        return ",".join(parse_attack_set(value))

    @field_validator("tolerance")
    @classmethod
    def _tolerance_is_a_budget(cls, value: str) -> str:
        try:
            above = parse_eps(value) > 0
        except ValueError as e:
            raise ValueError(f"tolerance {value!r}: {e}") from None
        if not above:
            raise ValueError(f"tolerance must be above 0, got {value!r}")
        return value

    @field_validator("eps")
    @classmethod
    def _some_budget(cls, value: list[str]) -> list[str]:
        if not {parse_eps(e) for e in value} - {0.0}:
            raise ValueError("give at least one --eps above 0")
        return value

    @property
    def budgets(self) -> list[float]:
        """The budgets above 0, in increasing order (eps 0 is the clean run, always played)."""
        return sorted({parse_eps(e) for e in self.eps} - {0.0})
