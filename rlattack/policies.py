"""One adapter over Stable-Baselines3, bundled-zoo and plain-torch networks.

Attacks see every policy the same way: float observations in [0, 1] of shape `(N, 4, 84, 84)`
go in, differentiable logits come out (Q-values for DQN, the quantile mean for QR-DQN, action
logits for actor-critic). Networks that expect 0..255 input (SB3, CleanRL) get `input_scale=255`.
Nothing here goes through SB3's `predict()`, which runs under `no_grad`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from rlattack.errors import UserInputError
from rlattack.observations import OBS_SHAPE

Outputs = Literal["logits", "q-values", "unknown"]
"""What a network's outputs are: action logits (actor-critic), Q-values (DQN, QR-DQN's quantile
mean) or not known (a TorchScript file). Only logits define a distribution to sample actions from."""


class Policy(nn.Module):
    """A frozen network in eval mode that maps [0, 1] observations to logits.

    Parameters never require gradients: attacks differentiate with respect to the input only,
    so no gradient ever lands on (or is computed for) the weights.
    """

    def __init__(
        self,
        net: nn.Module,
        n_actions: int,
        obs_shape: tuple[int, ...] = OBS_SHAPE,
        input_scale: float = 255.0,
        name: str = "torch",
        outputs: Outputs = "logits",
    ) -> None:
        super().__init__()
        self.net = net.eval()
        for p in net.parameters():  # not `requires_grad_`: TorchScript modules lack it
            p.requires_grad_(False)
        self.n_actions = n_actions
        self.obs_shape = tuple(obs_shape)
        self.input_scale = input_scale
        self.name = name
        self.outputs = outputs

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def forward(self, x: Tensor) -> Tensor:
        """Logits `(N, n_actions)` for observations `x` in [0, 1] of shape `(N, *obs_shape)`."""
        return self.net(x * self.input_scale)

    def logits(self, x: Tensor) -> Tensor:
        return self(x)

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Greedy actions for a batch of uint8 observations."""
        x = torch.as_tensor(obs, device=self.device).float() / 255.0
        return self(x).argmax(dim=1).cpu().numpy()

    def check_fits(self, n_actions: int, obs_shape: tuple[int, ...], env_name: str) -> None:
        """Refuse an env whose action count or observation shape this policy was not built for."""
        if n_actions != self.n_actions:
            raise UserInputError(
                f"action-space mismatch: {self.name} has {self.n_actions} actions, {env_name} has {n_actions}"
            )
        if tuple(obs_shape) != self.obs_shape:
            raise UserInputError(
                f"observation mismatch: {self.name} expects {self.obs_shape}, "
                f"{env_name} gives {tuple(obs_shape)}"
            )


class _QValues(nn.Module):
    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.q_net = policy.q_net

    def forward(self, obs: Tensor) -> Tensor:
        return self.q_net(obs)


class _QuantileMean(nn.Module):
    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.quantile_net = policy.quantile_net

    def forward(self, obs: Tensor) -> Tensor:
        return self.quantile_net(obs).mean(dim=1)


class _ActorLogits(nn.Module):
    """Raw action logits (before the softmax) of an SB3 actor-critic policy."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: Tensor) -> Tensor:
        from stable_baselines3.common.preprocessing import preprocess_obs

        p = self.policy
        # Not `p.extract_features`: without a shared extractor it runs the critic's too, as a pair.
        features = p.pi_features_extractor(preprocess_obs(obs, p.observation_space, p.normalize_images))
        return p.action_net(p.mlp_extractor.forward_actor(features))


Q_VALUE_ALGORITHMS = ("dqn", "qrdqn")
"""Algorithms whose networks output Q-values (no distribution to sample actions from)."""


def _sb3_head(algorithm: str, policy: nn.Module) -> nn.Module:
    if algorithm == "dqn":
        return _QValues(policy)
    if algorithm == "qrdqn":
        return _QuantileMean(policy)
    return _ActorLogits(policy)


def sb3_algorithm(path: Path) -> str:
    """Which algorithm saved this SB3 `.zip`, read from its `data` record (no code is run)."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        raise UserInputError(f"cannot read SB3 model {path}: {e}") from None
    module = data.get("policy_class", {}).get("__module__", "")
    if module == "stable_baselines3.dqn.policies":
        return "dqn"
    if module == "sb3_contrib.qrdqn.policies":
        return "qrdqn"
    if module == "stable_baselines3.common.policies":
        if "cg_max_steps" in data:
            return "trpo"
        return "ppo" if "clip_range" in data else "a2c"
    raise UserInputError(f"unsupported SB3 policy {module or '?'} in {path}")


def sb3_class(algorithm: str) -> Any:
    """The SB3 algorithm class; its `policy_aliases["CnnPolicy"]` is the network it trains."""
    import sb3_contrib
    import stable_baselines3

    classes = {
        "dqn": stable_baselines3.DQN,
        "a2c": stable_baselines3.A2C,
        "ppo": stable_baselines3.PPO,
        "qrdqn": sb3_contrib.QRDQN,
        "trpo": sb3_contrib.TRPO,
    }
    if algorithm not in classes:
        raise UserInputError(f"unknown algorithm {algorithm!r}; known: {', '.join(classes)}")
    return classes[algorithm]


def load_sb3(path: str | Path, device: str = "cpu") -> Policy:
    """Load a DQN, QR-DQN, A2C, PPO or TRPO `.zip`, algorithm read from the file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"no such SB3 model file: {path}")
    algorithm = sb3_algorithm(path)
    # Schedules are pickled callables that need not survive version changes; attacks never use them.
    constant: Callable[[float], float] = lambda _: 0.0  # noqa: E731
    custom = {
        "learning_rate": 0.0,
        "lr_schedule": constant,
        "exploration_schedule": constant,
        "clip_range": constant,
        "clip_range_vf": None,
    }
    try:
        model = sb3_class(algorithm).load(path, device=device, custom_objects=custom)
    except Exception as e:  # SB3 raises many types for a damaged archive
        raise UserInputError(f"cannot load SB3 model {path}: {type(e).__name__}: {e}") from None
    return from_sb3_policy(algorithm, model.policy, name=f"sb3:{path.name}")


def from_sb3_policy(algorithm: str, policy: nn.Module, name: str) -> Policy:
    return Policy(
        _sb3_head(algorithm, policy),
        n_actions=int(policy.action_space.n),
        obs_shape=tuple(policy.observation_space.shape),
        input_scale=255.0,
        name=name,
        outputs="q-values" if algorithm in Q_VALUE_ALGORITHMS else "logits",
    )


def load_torchscript(path: str | Path, device: str = "cpu") -> Policy:
    """A TorchScript module taking `(N, 4, 84, 84)` floats in [0, 255] and returning logits."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"no such TorchScript file: {path}")
    try:
        net = torch.jit.load(str(path), map_location=device)
        with torch.no_grad():
            out = net(torch.zeros(1, *OBS_SHAPE, device=device))
    except Exception as e:  # TorchScript raises RuntimeError and friends for a damaged file
        raise UserInputError(f"cannot load TorchScript module {path}: {e}") from None
    if out.ndim != 2:
        raise UserInputError(f"{path} returns shape {tuple(out.shape)}, expected (N, actions)")
    return Policy(net, n_actions=out.shape[1], name=f"torch:{path.name}", outputs="unknown")


def weights_digest(policy: Policy) -> str:
    """A hash of the network's parameters, buffers and input scale.

    A path or a zoo name can hold other weights later (a substitute retrained into the same
    folder, a victim trained further): results keyed by name check this before they are reused.
    """
    h = hashlib.sha256(repr(policy.input_scale).encode())
    for name, tensor in sorted(policy.net.state_dict().items()):
        h.update(f"\0{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def resolve_device(name: str) -> str:
    """`auto` is CUDA where this process sees a GPU (on Ray: the worker's), else the CPU."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda") or (name == "cuda" and not torch.cuda.is_available()):
        raise UserInputError(f"device {name!r} is not available here (use auto, cpu or cuda)")
    return name


def load_policy(agent: str, device: str = "cpu") -> Policy:
    """Resolve the CLI's AGENT: a zoo name, `sb3:PATH.zip` or `torch:PATH`."""
    if agent.startswith("sb3:"):
        return load_sb3(agent[4:], device)
    if agent.startswith("torch:"):
        return load_torchscript(agent[6:], device)
    from rlattack.zoo import load_victim

    return load_victim(agent, device)
