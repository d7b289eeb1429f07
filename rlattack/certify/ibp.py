"""Interval bound propagation (IBP; Gowal et al. 2018) of the action margin over an L-inf ball.

For observations `x` in [0, 1] and a budget `eps`, every input in the ball {x' : |x' - x| <= eps}
intersected with [0, 1] (what an attack can reach: attacks clip to [0, 1]) is enclosed in a box,
and the box is pushed through the network layer by layer: an affine layer maps the box's centre
and scales its radius by |W|, a monotone activation (ReLU, Tanh) maps both ends. The last layer
is not bounded on its own: as in CROWN-IBP, it is folded into the margins Z_{a*} - Z_a of the
clean greedy action a* over every other action a, whose lower bounds are tighter than the
difference of separate bounds.
A state is certified when every margin's lower bound is positive: no observation in the ball can
change the greedy action. Everything is differentiable in the network's weights, so the same
bound serves SA-DQN's regulariser in training.

Cost: two passes (centre and radius) through each layer but the last, about 2 forward passes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rlattack.certify.layers import Affine, Layer, network_layers
from rlattack.errors import UserInputError


def propagate(layers: list[Layer], lower: Tensor, upper: Tensor) -> tuple[Tensor, Tensor]:
    """Elementwise bounds of each output of `layers` for inputs in the box [lower, upper]."""
    centre, radius = (upper + lower) / 2, (upper - lower) / 2
    for layer in layers:
        if isinstance(layer, Affine):
            centre, radius = centre * layer.scale - layer.shift, radius * layer.scale
        elif isinstance(layer, nn.Linear):
            centre, radius = F.linear(centre, layer.weight, layer.bias), F.linear(radius, layer.weight.abs())
        elif isinstance(layer, nn.Conv2d):
            centre = layer(centre)
            radius = F.conv2d(
                radius, layer.weight.abs(), None, layer.stride, layer.padding, layer.dilation, layer.groups
            )
        elif isinstance(layer, nn.ReLU | nn.Tanh):  # monotone: the ends map to the ends
            low, high = layer(centre - radius), layer(centre + radius)
            centre, radius = (high + low) / 2, (high - low) / 2
        elif isinstance(layer, nn.AvgPool2d):  # linear with weights >= 0: the radius pools as well
            centre, radius = layer(centre), layer(radius)
        elif isinstance(layer, nn.Flatten):
            centre, radius = layer(centre), layer(radius)
        else:
            raise UserInputError(f"cannot bound a {type(layer).__name__} layer")
    return centre - radius, centre + radius


def input_box(x: Tensor, eps: float | Tensor) -> tuple[Tensor, Tensor]:
    """The L-inf ball of radius `eps` around `x`, intersected with the valid range [0, 1]; `eps`
    a number, or one per state ((N,) tensor)."""
    eps = torch.as_tensor(eps, dtype=x.dtype, device=x.device)
    if not bool((eps >= 0).all()):
        raise UserInputError(f"eps must be >= 0, got {eps.min().item()}")
    eps = eps.reshape(-1, *[1] * (x.ndim - 1)) if eps.ndim else eps
    return (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)


def margin_lower_bounds(layers: list[Layer], x: Tensor, eps: float | Tensor, action: Tensor) -> Tensor:
    """(N, A) lower bounds of Z_{action} - Z_a over the ball, for every action a (0 for a = action).

    The last layer (W, b) is folded into the margins: (W_{a*} - W_a) h + b_{a*} - b_a is bounded
    over the box of its input h directly.
    """
    *body, head = layers
    if not isinstance(head, nn.Linear):
        raise UserInputError("the last layer must be a Linear action head to bound the margins")
    low, high = propagate(body, *input_box(x, eps))
    centre, radius = (high + low) / 2, (high - low) / 2
    w = head.weight[action][:, None, :] - head.weight[None]  # (N, A, H)
    b = head.bias[action][:, None] - head.bias[None]  # (N, A)
    return torch.einsum("nah,nh->na", w, centre) + b - torch.einsum("nah,nh->na", w.abs(), radius)


def smallest_margin(layers: list[Layer], x: Tensor, eps: float | Tensor, action: Tensor) -> Tensor:
    """(N,) the lower bound of the greedy action's smallest margin over the ball: > 0 certifies."""
    margins = margin_lower_bounds(layers, x, eps, action)
    margins[torch.arange(len(x)), action] = torch.inf
    return margins.amin(dim=1)


def certified_radius(
    policy: nn.Module, x: Tensor, high: float, steps: int = 12, batch_size: int = 256
) -> Tensor:
    """(N,) the largest L-inf eps in [0, `high`] at which IBP certifies each state's greedy action,
    to `high` / 2**`steps` (0: not even the smallest step; `high`: certified at `high`).

    Bisection per state: the balls nest, so the intervals do, and a state certified at eps is
    certified at every smaller eps. This says how far a state is from being certified, in the
    unit of eps, where the certified rate at one eps says only yes or no.
    """
    layers = network_layers(policy)
    found = []
    with torch.no_grad():
        for chunk in x.split(batch_size):
            action = policy(chunk).argmax(dim=1)
            low = torch.zeros(len(chunk), dtype=chunk.dtype, device=chunk.device)
            up = torch.full_like(low, high)
            at_high = smallest_margin(layers, chunk, up, action) > 0
            for _ in range(steps):
                middle = (low + up) / 2
                ok = smallest_margin(layers, chunk, middle, action) > 0
                low, up = torch.where(ok, middle, low), torch.where(ok, up, middle)
            found.append(torch.where(at_high, up, low))
    return torch.cat(found) if found else torch.zeros(0, dtype=x.dtype)


def certified(policy: nn.Module, x: Tensor, eps: float, batch_size: int = 256) -> Tensor:
    """(N,) whether the greedy action of `policy` on each observation provably cannot change under
    any L-inf perturbation of size `eps` that stays in [0, 1]. `policy` maps [0, 1] observations
    to logits (a `rlattack.policies.Policy`)."""
    layers = network_layers(policy)
    found = []
    with torch.no_grad():
        for chunk in x.split(batch_size):
            found.append(smallest_margin(layers, chunk, eps, policy(chunk).argmax(dim=1)) > 0)
    return torch.cat(found) if found else torch.zeros(0, dtype=torch.bool)
