"""Our own actor-critic networks (the A3C recipe trains them, the zoo loads them).

`forward` returns the action logits only, so a network is what `rlattack.policies.Policy` wraps
and what attacks differentiate; training also reads the value head through `logits_and_value`.
The Atari network takes float observations on the 0..255 scale (as SB3 networks do, so
`Policy(..., input_scale=255)` applies to both).
"""

from __future__ import annotations

import math

from torch import Tensor, nn


class ActorCritic(nn.Module):
    """A policy head (logits) and a value head over a torso; the value head has its own torso
    where `value_torso` is given (as SB3's MLP policies do), else shares the policy's (A3C's CNN)."""

    def __init__(
        self,
        torso: nn.Module,
        features: int,
        n_actions: int,
        input_scale: float,
        value_torso: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.torso = torso
        self.value_torso = value_torso
        self.policy_head = nn.Linear(features, n_actions)
        self.value_head = nn.Linear(features, 1)
        self.input_scale = input_scale
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.orthogonal_(module.weight, math.sqrt(2))
                nn.init.zeros_(module.bias)
        # Small initial logits give a near-uniform first policy, which explores evenly.
        nn.init.orthogonal_(self.policy_head.weight, 0.01)
        nn.init.orthogonal_(self.value_head.weight, 1.0)

    def forward(self, obs: Tensor) -> Tensor:
        """Action logits `(N, n_actions)`."""
        return self.policy_head(self.torso(obs / self.input_scale))

    def logits_and_value(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """Action logits `(N, n_actions)` and state values `(N,)`, the torso run once if shared."""
        x = obs / self.input_scale
        features = self.torso(x)
        value_features = features if self.value_torso is None else self.value_torso(x)
        return self.policy_head(features), self.value_head(value_features).squeeze(-1)


def nature_cnn(n_actions: int, in_channels: int = 4) -> ActorCritic:
    """The Nature-DQN network (Mnih et al. 2015) for `(N, 4, 84, 84)` frames on the 0..255 scale."""
    torso = nn.Sequential(
        nn.Conv2d(in_channels, 32, 8, stride=4),
        nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 512),
        nn.ReLU(),
    )
    return ActorCritic(torso, 512, n_actions, input_scale=255.0)


def small_cnn(n_actions: int, in_channels: int = 4) -> ActorCritic:
    """The network of Mnih et al. 2013 and A3C's Atari runs: a quarter of the Nature CNN's
    multiply-adds, and a shallower stack, whose interval bounds stay tighter in certified training."""
    torso = nn.Sequential(
        nn.Conv2d(in_channels, 16, 8, stride=4),
        nn.ReLU(),
        nn.Conv2d(16, 32, 4, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 9 * 9, 256),
        nn.ReLU(),
    )
    return ActorCritic(torso, 256, n_actions, input_scale=255.0)


def mlp(n_inputs: int, n_actions: int, hidden: int = 64) -> ActorCritic:
    """Two tanh layers for flat observations (CartPole), one stack each for policy and value: a
    shared one lets the value error, which grows with the game's length, pull the policy off."""

    def torso() -> nn.Module:
        return nn.Sequential(nn.Linear(n_inputs, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh())

    return ActorCritic(torso(), hidden, n_actions, input_scale=1.0, value_torso=torso())


def build_network(name: str, obs_shape: tuple[int, ...], n_actions: int) -> ActorCritic:
    """The network a run record or zoo victim names (`nature-cnn`, `small-cnn` or `mlp`), freshly
    initialised."""
    if name == "nature-cnn":
        return nature_cnn(n_actions, in_channels=obs_shape[0])
    if name == "small-cnn":
        return small_cnn(n_actions, in_channels=obs_shape[0])
    if name == "mlp":
        return mlp(math.prod(obs_shape), n_actions)
    raise ValueError(f"unknown network {name!r} (known: nature-cnn, small-cnn, mlp)")
