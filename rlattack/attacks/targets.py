"""Rules that choose a targeted attack's target action for each observation.

Lin et al. 2017 and Behzadan & Munir 2017 steer a policy towards its least-preferred action or
towards an adversary's own choice; a rule maps observations and clean logits to actions.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rlattack.attacks.base import TargetRule
from rlattack.attacks.draws import Draws
from rlattack.errors import UserInputError
from rlattack.policies import Policy


def least_likely(x: Tensor, logits: Tensor) -> Tensor:
    """The action the policy likes least (lowest logit; for DQN the lowest Q-value)."""
    return logits.argmin(dim=1)


class FixedAction:
    """Always the same action, e.g. 'never move' in Pong."""

    def __init__(self, action: int) -> None:
        self.action = action

    def __call__(self, x: Tensor, logits: Tensor) -> Tensor:
        if not 0 <= self.action < logits.shape[1]:
            raise UserInputError(f"target action {self.action} is not in [0, {logits.shape[1]})")
        return torch.full((len(x),), self.action, dtype=torch.long, device=x.device)


class RandomOther:
    """A uniformly random action other than the clean greedy one (seeded)."""

    def __init__(self, seed: int = 0) -> None:
        self.draws = Draws(seed)

    def __call__(self, x: Tensor, logits: Tensor) -> Tensor:
        n, k = logits.shape
        shift = self.draws.integers(1, k, n, logits.device)
        return (logits.argmax(dim=1) + shift) % k


class PolicyAction:
    """What the adversary's own policy would do on the observation (Behzadan & Munir 2017 steer
    the victim into an adversarial policy's actions), e.g. one trained to lose."""

    def __init__(self, adversary: Policy) -> None:
        self.adversary = adversary

    @torch.no_grad()
    def __call__(self, x: Tensor, logits: Tensor) -> Tensor:
        if self.adversary.n_actions != logits.shape[1]:
            raise UserInputError(
                f"the adversary {self.adversary.name} has {self.adversary.n_actions} actions, "
                f"the attacked policy {logits.shape[1]}"
            )
        return self.adversary.to(x.device)(x).argmax(dim=1)


def parse_target(spec: str, seed: int = 0) -> TargetRule:
    """`least-likely`, `random`, `action:K` or `policy:AGENT`, as written on the command line."""
    if spec == "least-likely":
        return least_likely
    if spec == "random":
        return RandomOther(seed)
    kind, _, arg = spec.partition(":")
    if kind == "action" and arg.isdigit():
        return FixedAction(int(arg))
    if kind == "policy" and arg:
        from rlattack.loading import load_policy

        return PolicyAction(load_policy(arg))
    raise UserInputError(f"bad target {spec!r}: use least-likely, random, action:K or policy:AGENT")


def check_target(target: str | None, n_actions: int, obs_shape: tuple[int, ...], game: str) -> None:
    """A target rule must name an action `game` has, and an adversary's policy must fit the game:
    tried on one blank observation, so that the run is refused before any game is played."""
    if target is None:
        return
    rule = parse_target(target)
    if isinstance(rule, PolicyAction):
        try:
            rule.adversary.check_fits(n_actions, obs_shape, game)
        except UserInputError as e:
            raise UserInputError(f"target {target}: {e}") from None
    rule(torch.zeros(1, *obs_shape), torch.zeros(1, n_actions))
