"""`rlattack substitute` as a function: watch the target, train its substitute, save each round.

The settings are validated before the first query, and every finished round rewrites
`substitute.pt` (TorchScript, usable as `torch:PATH`) and `substitute.json`, so an interrupted
run keeps its last finished round.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlattack.blackbox.data import noise_stability
from rlattack.blackbox.oracle import Oracle
from rlattack.blackbox.substitute import ARCHITECTURES, Round, Substitute, train_substitute
from rlattack.files import atomic_write, write_json
from rlattack.plots import plot_agreement
from rlattack.policies import Policy
from rlattack.provenance import code_version
from rlattack.rollout.watch import watch
from rlattack.tables import percent

HOLDOUT_EVERY = 8
"""The held-out set records one step in 8 of the target's games, so that it spans whole games."""


class SubstituteSettings(BaseModel):
    """How a substitute is trained from the target's answers (Papernot et al. 2017; Behzadan &
    Munir 2017): what the attacker watches, how it augments, and how it trains."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    budget: int = Field(
        default=100_000, ge=1, description="most queries: watched states plus augmentation labels"
    )
    play: int | None = Field(
        default=None,
        ge=1,
        description="states watched, each a query (default: what the rounds leave of the budget)",
    )
    rounds: int = Field(default=0, ge=0, description="Jacobian augmentation rounds; each doubles the set")
    lam: float = Field(
        default=0.1, description="augmentation step on the [0, 1] scale (at least one gray level, 1/255)"
    )
    tau: int = Field(default=2, ge=1, description="rounds between sign flips of the augmentation step")
    arch: str = Field(
        default="mnih2013", description="mnih2013 (default, unlike the victims' nature), nature or mlp"
    )
    members: int = Field(
        default=1,
        ge=1,
        description="networks trained side by side from other initialisations, answering as one",
    )
    epochs: int = Field(default=8, ge=1, description="training passes over the set after each round")
    batch_size: int = Field(default=128, ge=1, description="training minibatch")
    lr: float = Field(default=1e-3, gt=0, description="Adam step size (the start of the cosine schedule)")
    lr_schedule: Literal["cosine", "constant"] = Field(
        default="cosine", description="cosine (from --lr to 0 over each round's epochs) or constant"
    )
    explore: float = Field(
        default=0.0, ge=0, le=1, description="chance of a random move instead of the target's while watching"
    )
    sticky: float = Field(
        default=0.1, ge=0, lt=1, description="sticky-action probability of the watched games"
    )
    holdout: int = Field(
        default=5_000, ge=1, description="held-out states from other games, for the agreement"
    )
    holdout_sticky: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="sticky-action probability of the held-out games (the convention: 0)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> SubstituteSettings:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown substitute architecture {self.arch!r}: use {', '.join(ARCHITECTURES)}")
        if round(self.lam * 255) < 1:
            raise ValueError(
                f"--lam must be at least one gray level (lam * 255 rounds to >= 1), got {self.lam}"
            )
        if self.watched < 1:
            raise ValueError(
                f"a budget of {self.budget} leaves no state to watch before {self.rounds} doublings"
            )
        if self.watched > self.budget:
            raise ValueError(f"--play must be at most --budget ({self.budget}), got {self.play}")
        return self

    @property
    def watched(self) -> int:
        """States watched before augmenting: `play`, else what the doublings leave of the budget."""
        return self.budget // 2**self.rounds if self.play is None else self.play


def make_substitute(
    agent: str,
    target: Policy,
    game: str,
    settings: SubstituteSettings,
    out: Path,
    envs: int = 8,
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train a substitute of `target` from its actions only and write it to `out`; the rounds."""
    s = settings
    sub = Substitute(
        s.arch, target.obs_shape, target.n_actions, s.lr, str(target.device), seed, s.members, s.lr_schedule
    )
    oracle = Oracle(target, s.budget)
    # The target's own play in other games (env seeds far from the attacker's): not charged.
    referee = Oracle(target)
    held_out = watch(
        referee,
        game,
        s.holdout,
        envs,
        seed + 1_000_000,
        progress=progress,
        sticky=s.holdout_sticky,
        every=HOLDOUT_EVERY,
    )
    stability = noise_stability(referee, held_out, seed=seed)
    print(
        f"the target keeps its action under +-1 gray level of random noise on {stability:.1%} "
        "of the held-out states (a reference beside the agreement)"
    )
    seed_set = watch(
        oracle, game, s.watched, envs, seed, progress=progress, explore=s.explore, sticky=s.sticky
    )
    config = {"agent": agent, "game": game, **s.model_dump(), "play": s.watched}
    config |= {"holdout_every": HOLDOUT_EVERY, "envs": envs, "seed": seed}
    history: list[dict[str, Any]] = []

    def save(sub: Substitute, done: Round) -> None:
        history.append(dict(vars(done)))
        print(
            f"round {done.round}: {done.points} points, {done.queries} queries, "
            f"agreement {percent(done.agreement)} on {done.held_out} unseen held-out states "
            f"({done.agreement_all:.1%} on all {len(held_out)})"
        )
        atomic_write(out / "substitute.pt", lambda p: sub.save(str(p)))
        record = {"use_as": f"torch:{out / 'substitute.pt'}", "n_actions": sub.n_actions}
        record |= {"obs_shape": list(sub.obs_shape), "queries": done.queries, "agreement": done.agreement}
        record |= {
            "target_noise_stability": stability,
            "finished": done.round == s.rounds or oracle.remaining == 0,
        }
        write_json(
            out / "substitute.json", record | {"config": config, "code": code_version(), "rounds": history}
        )

    train_substitute(
        sub, oracle, seed_set, held_out, s.rounds, s.lam, s.tau, s.epochs, s.batch_size, progress, save
    )
    plot_agreement(history, out / "agreement.png", f"substitute of {agent} ({s.arch}) on {game}")
    return history
