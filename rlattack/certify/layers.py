"""A policy's network as the plain sequence of layers that interval bounds go through.

Bounds are only sound if they pass through every operation the network really applies, the input
scaling included: a `Policy` multiplies its [0, 1] input by `input_scale`, and SB3 networks divide
by 255 again inside. This module reads those steps off the networks the suite loads (the Nature
CNN of SB3 DQN, QR-DQN, A2C, PPO and TRPO; the A3C network; plain `nn.Sequential` stacks of
Conv2d / Linear / AvgPool2d / ReLU / Tanh / Flatten, TorchScript ones included) and refuses
anything else by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rlattack.errors import UserInputError


@dataclass(frozen=True)
class Affine:
    """x * scale - shift, elementwise (`scale` > 0): input scaling and standardisation."""

    scale: float | Tensor
    shift: float | Tensor = 0.0


Layer = nn.Conv2d | nn.Linear | nn.AvgPool2d | nn.ReLU | nn.Tanh | nn.Flatten | Affine
"""What interval propagation knows; the last layer of a network is a Linear (the action head)."""


def network_layers(policy: nn.Module) -> list[Layer]:
    """The layers of a `rlattack.policies.Policy` from its [0, 1] input to its logits."""
    scale = float(getattr(policy, "input_scale", 1.0))
    net = getattr(policy, "net", policy)
    layers: list[Layer] = [Affine(scale)] if scale != 1.0 else []
    layers += module_layers(net)
    if not layers or not isinstance(layers[-1], nn.Linear):
        raise UserInputError(f"cannot bound {type(net).__name__}: its last layer is not a Linear action head")
    return layers


def module_layers(net: nn.Module) -> list[Layer]:
    """The layers of one of the networks the suite loads, in order (see the module docstring)."""
    kind = _kind(net)
    if kind in ("_QValues", "_QuantileMean", "_ActorLogits"):  # rlattack.policies' SB3 heads
        return module_layers(next(iter(net.children())))
    if kind == "QNetwork":
        return [*_preprocess(net), *module_layers(net.features_extractor), *module_layers(net.q_net)]
    if kind == "QuantileNetwork":
        head = module_layers(net.quantile_net)
        return [
            *_preprocess(net),
            *module_layers(net.features_extractor),
            *head[:-1],
            _quantile_mean(head[-1], net.n_quantiles),
        ]
    if hasattr(net, "pi_features_extractor") and hasattr(net, "action_net"):  # SB3 actor-critic
        body = [*module_layers(net.pi_features_extractor), *module_layers(net.mlp_extractor.policy_net)]
        return [*_preprocess(net), *body, *module_layers(net.action_net)]
    if kind == "FlattenExtractor":  # SB3's extractor for flat observations
        return [nn.Flatten()]
    if kind == "NatureCNN":
        return [*module_layers(net.cnn), *module_layers(net.linear)]
    if kind == "ActorCritic":  # rlattack.networks, the A3C recipe's
        return [Affine(1.0 / net.input_scale), *module_layers(net.torso), *module_layers(net.policy_head)]
    if kind == "_Standardize":  # a substitute's input standardisation
        return [Affine(1.0 / net.scale, net.mean / net.scale)]
    if kind == "Sequential":
        return [layer for child in net.children() for layer in module_layers(child)]
    if kind in ("Conv2d", "Linear", "AvgPool2d", "ReLU", "Tanh", "Flatten"):
        return [_plain(net, kind)]
    raise UserInputError(
        f"cannot bound a {kind} layer (interval bounds know Conv2d, Linear, AvgPool2d, ReLU, Tanh, Flatten)"
    )


def _kind(net: nn.Module) -> str:
    """The layer's class name; a TorchScript module keeps it as `original_name`."""
    return str(getattr(net, "original_name", type(net).__name__))


def _plain(net: nn.Module, kind: str) -> Layer:
    """The layer itself, or for a TorchScript one an eager copy with the same weights."""
    if not isinstance(net, torch.jit.ScriptModule):
        return net  # type: ignore[return-value]
    if kind in ("ReLU", "Tanh"):
        return nn.ReLU() if kind == "ReLU" else nn.Tanh()
    if kind == "AvgPool2d":
        return nn.AvgPool2d(net.kernel_size, net.stride, net.padding, net.ceil_mode, net.count_include_pad)
    if kind == "Flatten":
        if (net.start_dim, net.end_dim) != (1, -1):
            raise UserInputError("cannot bound a Flatten other than Flatten(1, -1)")
        return nn.Flatten()
    weight, bias = net.weight.detach(), net.bias.detach()
    if kind == "Linear":
        plain = nn.Linear(weight.shape[1], weight.shape[0])
    else:
        plain = nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), net.stride, net.padding)
    plain.load_state_dict({"weight": weight, "bias": bias})
    return plain.to(weight.device)


def _preprocess(net: nn.Module) -> list[Layer]:
    """SB3 divides image observations by 255 inside the network (`normalize_images`)."""
    from stable_baselines3.common.preprocessing import is_image_space

    images = is_image_space(net.observation_space, check_channels=False)
    return [Affine(1.0 / 255.0)] if images and getattr(net, "normalize_images", True) else []


def _quantile_mean(head: Layer, n_quantiles: int) -> nn.Linear:
    """QR-DQN's Q-value is the mean of its quantiles (outputs viewed as (quantile, action)), a
    linear map of the quantile head: one Linear."""
    if not isinstance(head, nn.Linear):
        raise UserInputError("cannot bound a quantile head that does not end in a Linear")
    n_actions = head.out_features // n_quantiles
    mean = nn.Linear(head.in_features, n_actions).to(head.weight.device)
    with torch.no_grad():
        mean.weight.copy_(head.weight.view(n_quantiles, n_actions, -1).mean(0))
        mean.bias.copy_(head.bias.view(n_quantiles, n_actions).mean(0))
    return mean
