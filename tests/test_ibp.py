"""Interval bounds: sound on every architecture the suite loads, exact on linear policies, and
certified actions that no attack moves."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlattack.attacks import MAD, PGD
from rlattack.certify import certified, certified_radius, margin_lower_bounds, network_layers, propagate
from rlattack.certify.ibp import input_box
from rlattack.errors import UserInputError
from rlattack.loading import load_torchscript
from rlattack.networks import nature_cnn
from rlattack.policies import Policy
from rlattack.sb3 import load_sb3

EPS = 2 / 255


def policies(sb3_models, tmp_path) -> dict[str, Policy]:
    """One policy per architecture: SB3's five heads, the A3C network, a TorchScript stack."""
    found = {name: load_sb3(sb3_models[name]) for name in ("dqn", "qrdqn", "a2c", "ppo", "trpo")}
    torch.manual_seed(0)
    found["a3c"] = Policy(nature_cnn(6), 6, name="a3c")
    net = nn.Sequential(nn.Conv2d(4, 8, 8, 4), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 20 * 20, 6))
    torch.jit.script(net).save(str(tmp_path / "stack.pt"))
    found["torchscript"] = load_torchscript(tmp_path / "stack.pt")
    return found


def test_bounds_contain_every_reachable_output_on_each_architecture(sb3_models, tmp_path) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 4, 84, 84, generator=generator)
    for name, policy in policies(sb3_models, tmp_path).items():
        low, high = propagate(network_layers(policy), *input_box(x, EPS))
        with torch.no_grad():
            assert torch.allclose(propagate(network_layers(policy), x, x)[0], policy(x), atol=1e-4), name
            for i in range(2):  # 500 random corners and 500 random points of the ball around each state
                corners = x[i] + EPS * (2 * torch.randint(0, 2, (500, *x.shape[1:]), generator=generator) - 1)
                inside = x[i] + EPS * (2 * torch.rand(500, *x.shape[1:], generator=generator) - 1)
                out = policy(torch.cat([corners, inside]).clamp(0, 1))
                assert (out >= low[i] - 1e-4).all() and (out <= high[i] + 1e-4).all(), name


def test_certified_states_keep_their_action_under_pgd(sb3_models, tmp_path) -> None:
    x = torch.rand(4, 4, 84, 84, generator=torch.Generator().manual_seed(1))
    for name, policy in policies(sb3_models, tmp_path).items():
        for eps in (1e-5, 1e-4, EPS):
            safe = certified(policy, x, eps)
            for attack in (PGD(eps, steps=20, seed=0), PGD(eps, steps=20, loss="margin"), MAD(eps, seed=0)):
                assert not (attack(policy, x).changed & safe).any(), (name, eps, type(attack).__name__)


def test_on_a_linear_policy_the_bounds_are_exact() -> None:
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    policy = Policy(linear, 3, obs_shape=(3, 2, 2), input_scale=1.0)
    x = torch.rand(5, 3, 2, 2) * 0.5 + 0.25  # the ball stays inside [0, 1]
    low, high = propagate(network_layers(policy), *input_box(x, 0.1))
    w, b = linear[1].weight, linear[1].bias
    centre = x.flatten(1) @ w.T + b
    assert torch.allclose(low, centre - 0.1 * w.abs().sum(1), atol=1e-6)
    assert torch.allclose(high, centre + 0.1 * w.abs().sum(1), atol=1e-6)
    action = policy(x).argmax(1)
    margins = margin_lower_bounds(network_layers(policy), x, 0.1, action)
    exact = (centre.gather(1, action[:, None]) - centre) - 0.1 * (w[action][:, None] - w[None]).abs().sum(-1)
    assert torch.allclose(margins, exact, atol=1e-6)  # the worst corner of the ball, reached


def test_margins_are_at_least_as_tight_as_separate_bounds(sb3_models) -> None:
    policy = load_sb3(sb3_models["dqn"])
    x = torch.rand(3, 4, 84, 84, generator=torch.Generator().manual_seed(2))
    layers = network_layers(policy)
    action = policy(x).argmax(1)
    low, high = propagate(layers, *input_box(x, EPS))
    separate = low.gather(1, action[:, None]) - high
    assert (margin_lower_bounds(layers, x, EPS, action) >= separate - 1e-5).all()


def test_every_state_is_certified_at_zero_and_none_at_a_huge_eps(tiny_policy) -> None:
    x = torch.rand(
        16, *tiny_policy.obs_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    assert certified(tiny_policy, x, 0.0).all()
    assert not certified(tiny_policy, x, 1.0).any()


def test_a_batch_is_certified_as_its_samples_one_by_one(tiny_policy) -> None:
    x = torch.rand(9, *tiny_policy.obs_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    together = certified(tiny_policy, x, 0.01, batch_size=4)
    assert together.tolist() == [bool(certified(tiny_policy, x[i : i + 1], 0.01)) for i in range(9)]


def test_a_linear_policys_certified_radius_is_its_distance_to_the_boundary() -> None:
    # two actions, z1 - z0 = w . x + b: the L-inf distance of x to the boundary is |w . x + b| / |w|_1
    torch.manual_seed(0)
    net = nn.Linear(12, 2).double()
    policy = Policy(net, 2, obs_shape=(12,), input_scale=1.0)
    x = torch.rand(6, 12, dtype=torch.float64) * 0.02 + 0.49  # every ball below stays inside [0, 1]
    w = net.weight[1] - net.weight[0]
    distance = ((x @ w + net.bias[1] - net.bias[0]).abs() / w.abs().sum()).detach()
    high = 0.4
    found = certified_radius(policy, x, high=high, steps=16)
    assert torch.all((found - distance.clamp(max=high)).abs() <= high / 2**16)


def test_the_radius_agrees_with_the_certified_rate_at_every_eps(tiny_policy) -> None:
    x = torch.rand(9, *tiny_policy.obs_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    radius = certified_radius(tiny_policy, x, high=0.1, steps=10, batch_size=4)
    step = 0.1 / 2**10
    assert certified(tiny_policy, x, 0.0).all() and (radius > 0).any()
    for i in range(9):  # certified just inside its radius, not just outside it (below the cap)
        assert certified(tiny_policy, x[i : i + 1], max(float(radius[i]) - step, 0.0)).item()
        if radius[i] < 0.1:
            assert not certified(tiny_policy, x[i : i + 1], float(radius[i]) + step).item()


def test_a_layer_it_cannot_bound_is_a_clear_error() -> None:
    policy = Policy(nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=1), nn.Linear(4, 2)), 2, (4,), 1.0)
    with pytest.raises(UserInputError, match="cannot bound a Softmax layer"):
        certified(policy, torch.rand(1, 4), 0.1)
    with pytest.raises(UserInputError, match="eps must be >= 0"):
        certified(Policy(nn.Linear(4, 2), 2, (4,), 1.0), torch.rand(1, 4), -1.0)
