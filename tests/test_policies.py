"""The policy adapter: SB3 round trips, TorchScript, weights-only safetensors, clear refusals."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from torch import nn

from rlattack.cli import main
from rlattack.errors import UserInputError
from rlattack.loading import load_policy, load_torchscript
from rlattack.networks import nature_cnn
from rlattack.observations import OBS_SHAPE
from rlattack.policies import Policy
from rlattack.safetensors_agent import save_safetensors_agent
from rlattack.sb3 import from_sb3_policy, load_sb3, sb3_algorithm, sb3_class

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


def test_a_nature_cnn_saved_weights_only_gives_exactly_its_own_outputs(tmp_path) -> None:
    torch.manual_seed(0)
    net = nature_cnn(6)
    path = tmp_path / "mine.safetensors"
    save_safetensors_agent(net, path, algorithm="a3c", n_actions=6)
    policy = load_policy(f"safetensors:{path}")
    x = torch.as_tensor(OBS).float() / 255
    assert torch.equal(policy(x), net(x * 255))
    assert (policy.name, policy.outputs, policy.n_actions) == ("safetensors:mine.safetensors", "logits", 6)


class CleanRLQNetwork(nn.Module):
    """CleanRL's `dqn_atari.py` network: the Nature CNN with one Q-value head, 0..255 input."""

    def __init__(self, n_actions: int) -> None:
        super().__init__()
        self.network = nn.Sequential(
            nn.Conv2d(4, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(3136, 512),
            nn.ReLU(),
            nn.Linear(512, n_actions),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x / 255.0)


SB3_DQN_NAMES = {"0": "cnn.0", "2": "cnn.2", "4": "cnn.4", "7": "linear.0"}
"""CleanRL's layer index -> SB3's DQN `q_net.features_extractor` name; the head is `q_net.q_net.0`."""


def test_a_plain_q_network_renamed_to_sb3s_dqn_gives_exactly_its_own_q_values(tmp_path) -> None:
    torch.manual_seed(0)
    net = CleanRLQNetwork(6)
    state = {}
    for key, tensor in net.state_dict().items():
        _, index, kind = key.split(".")
        layer = f"features_extractor.{SB3_DQN_NAMES[index]}" if index in SB3_DQN_NAMES else "q_net.0"
        state[f"q_net.{layer}.{kind}"] = tensor
    path = tmp_path / "cleanrl.safetensors"
    save_safetensors_agent(state, path, algorithm="dqn", n_actions=6)
    policy = load_policy(f"safetensors:{path}")
    x = torch.as_tensor(OBS).float() / 255
    assert torch.equal(policy(x), net(x * 255))
    assert policy.outputs == "q-values"


def test_a_state_dict_that_does_not_fit_is_not_saved(tmp_path) -> None:
    state = {k: v for k, v in nature_cnn(6).state_dict().items() if k != "value_head.bias"}
    with pytest.raises(ValueError, match=r"missing \['value_head.bias'\]"):
        save_safetensors_agent(state, tmp_path / "bad.safetensors", algorithm="a3c", n_actions=6)
    assert list(tmp_path.iterdir()) == []


def test_eval_plays_a_weights_only_agent_from_the_command_line(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr("rlattack.envs.MAX_FRAMES", 400)  # 100 steps of Pong: a game in a second
    path = tmp_path / "mine.safetensors"
    save_safetensors_agent(nature_cnn(6), path, algorithm="a3c", n_actions=6)
    out = tmp_path / "out.json"
    args = ["eval", "--agent", f"safetensors:{path}", "--game", "pong", "--episodes", "1", "--device", "cpu"]
    monkeypatch.setattr(
        sys, "argv", ["rlattack", *args, "--attack", "fgsm", "--json", str(out), "--no-progress"]
    )
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    assert json.loads(out.read_text())["summary"]["episodes"] == 1
