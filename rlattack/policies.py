"""The adapter every loader returns: a frozen network from [0, 1] observations to logits.

Attacks see every policy the same way: float observations in [0, 1] of shape `(N, 4, 84, 84)`
go in, differentiable logits come out (Q-values for DQN, the quantile mean for QR-DQN, action
logits for actor-critic). Networks that expect 0..255 input (SB3, CleanRL) get `input_scale=255`.
Nothing here goes through SB3's `predict()`, which runs under `no_grad`.
"""

from __future__ import annotations

import hashlib
import math
from typing import Literal

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
        """Logits `(N, n_actions)` for observations `x` in [0, 1] of shape `(N, *obs_shape)`.

        NaN or +inf outputs are refused: an argmax over them is an arbitrary action, and every
        figure computed from them would look like a measurement. -inf is allowed (an action a
        smoothed vote never chose), unless a whole row is -inf.
        """
        # no copy of the batch where the scale is 1 (at K = 256 a copy costs milliseconds)
        out = self.net(x) if self.input_scale == 1.0 else self.net(x * self.input_scale)
        bad = torch.isnan(out) | (out == math.inf)
        if bad.any() or (out == -math.inf).all(dim=-1).any():
            raise UserInputError(
                f"{self.name} gives outputs that are not finite (NaN or inf) on "
                f"{int(bad.any(dim=-1).sum())} of {len(out)} observations: no action can be read from them"
            )
        return out

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


def check_finite_weights(policy: Policy) -> Policy:
    """Refuse a network with a NaN or infinite weight: it would play, and its figures would look
    like measurements."""
    for name, tensor in policy.net.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise UserInputError(f"{policy.name} has weights that are not finite (NaN or inf) in {name}")
    return policy


def resolve_device(name: str) -> str:
    """`auto` is CUDA where this process sees a GPU (on Ray: the worker's), else the CPU."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda") or (name == "cuda" and not torch.cuda.is_available()):
        raise UserInputError(f"device {name!r} is not available here (use auto, cpu or cuda)")
    return name
