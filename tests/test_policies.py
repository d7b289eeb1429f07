"""The policy adapter: SB3 round trips, TorchScript, zoo-style weights, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlattack.errors import UserInputError
from rlattack.observations import OBS_SHAPE
from rlattack.policies import (
    Policy,
    from_sb3_policy,
    load_policy,
    load_sb3,
    load_torchscript,
    sb3_algorithm,
    sb3_class,
)

OBS = np.random.default_rng(0).integers(0, 256, (5, *OBS_SHAPE), dtype=np.uint8)


def _sb3_model(path):
    """SB3's own loader, which unpickles: trusted here, on the fixture's own files."""
    return sb3_class(sb3_algorithm(path)).load(path, device="cpu")


@pytest.mark.parametrize("name", ["dqn", "qrdqn", "ppo", "a2c", "trpo"])
def test_algorithm_is_read_from_the_zip(sb3_models, name) -> None:
    assert sb3_algorithm(sb3_models[name]) == name


@pytest.mark.parametrize("name", ["dqn", "qrdqn", "ppo", "a2c", "trpo"])
def test_sb3_zip_read_without_unpickling_gives_exactly_sb3s_own_logits(sb3_models, name) -> None:
    policy = load_sb3(sb3_models[name])
    theirs = from_sb3_policy(name, _sb3_model(sb3_models[name]).policy, name="sb3")
    x = torch.as_tensor(OBS).float() / 255
    assert torch.equal(policy(x), theirs(x))
    assert (policy.name, policy.outputs, policy.n_actions) == (f"sb3:{name}.zip", theirs.outputs, 6)


@pytest.mark.parametrize("name", ["dqn", "qrdqn", "ppo", "a2c", "trpo"])
def test_sb3_round_trip_gives_the_networks_own_logits(sb3_models, name) -> None:
    policy = load_sb3(sb3_models[name])
    model = _sb3_model(sb3_models[name])
    obs_t = model.policy.obs_to_tensor(OBS)[0]
    x = torch.as_tensor(OBS).float() / 255
    ours = policy(x)
    with torch.no_grad():
        if name == "dqn":
            theirs = model.policy.q_net(obs_t)
        elif name == "qrdqn":
            theirs = model.policy.quantile_net(obs_t).mean(dim=1)
        else:  # SB3 keeps normalised logits; compare log-probabilities
            theirs = model.policy.get_distribution(obs_t).distribution.logits
            ours = torch.log_softmax(ours, dim=1)
    assert torch.allclose(ours, theirs, atol=1e-5)
    actions, _ = model.predict(OBS, deterministic=True)
    assert np.array_equal(policy.act(OBS), actions)
    assert policy.n_actions == 6 and policy.obs_shape == OBS_SHAPE


def test_logits_are_differentiable(sb3_models) -> None:
    policy = load_sb3(sb3_models["ppo"])
    x = (torch.as_tensor(OBS).float() / 255).requires_grad_(True)
    (grad,) = torch.autograd.grad(policy(x).sum(), x)
    assert grad.abs().sum() > 0


def test_torchscript_module(tmp_path) -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(np.prod(OBS_SHAPE)), 4))
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(net), str(path))
    policy = load_policy(f"torch:{path}")
    x = torch.as_tensor(OBS).float() / 255
    assert policy.n_actions == 4
    assert torch.allclose(policy(x), net(x * 255), atol=1e-5)


def test_action_space_mismatch_is_refused(sb3_models) -> None:
    policy = load_sb3(sb3_models["breakout-dqn"])
    with pytest.raises(UserInputError, match=r"action-space mismatch: .* 4 actions, pong has 6"):
        policy.check_fits(6, OBS_SHAPE, "pong")


def test_observation_mismatch_is_refused() -> None:
    policy = Policy(torch.nn.Linear(3, 2), n_actions=2, obs_shape=(3,))
    with pytest.raises(UserInputError, match="observation mismatch"):
        policy.check_fits(2, OBS_SHAPE, "pong")


def test_unreadable_files_are_refused(tmp_path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(UserInputError, match="cannot read SB3 model"):
        load_sb3(junk)
    with pytest.raises(UserInputError, match="no such SB3 model file"):
        load_sb3(tmp_path / "missing.zip")
    with pytest.raises(UserInputError, match="cannot load TorchScript"):
        load_torchscript(junk)
    with pytest.raises(UserInputError, match="unknown agent"):
        load_policy("no-such-victim")
