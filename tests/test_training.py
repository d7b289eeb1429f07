"""Training runs: checkpoints survive, and a shipped victim can be trained further elsewhere."""

from __future__ import annotations

import json

import torch
from stable_baselines3 import DQN

from agents.training import continue_from_victim, export_weights
from rlattack.envs import Sb3VecEnv


def _dqn(seed: int) -> DQN:
    return DQN("CnnPolicy", Sb3VecEnv("pong", 1, seed=0), buffer_size=10, learning_starts=100, seed=seed)


def test_continue_from_a_victim_takes_its_weights_steps_and_record(tmp_path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    trained = _dqn(seed=1)
    export_weights(trained, victim / "weights.safetensors")
    meta = {
        "algorithm": "dqn",
        "game": "pong",
        "seed": 1,
        "command": "python -m agents.dqn",
        "network": "nature-cnn",
        "timesteps": 5000,
        "frames": 20000,
        "wall_seconds": 60.0,
        "hardware": "here",
        "resumed_with": [],
    }
    (victim / "meta.json").write_text(json.dumps(meta))
    fresh = _dqn(seed=2)
    continue_from_victim(fresh, victim, tmp_path)
    for net in (fresh.policy.q_net, fresh.policy.q_net_target):
        for ours, theirs in zip(
            net.state_dict().values(), trained.policy.q_net.state_dict().values(), strict=True
        ):
            assert torch.equal(ours, theirs)
    assert fresh.num_timesteps == 5000 and fresh.learning_starts == 5100
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["frames"] == 20000 and record["wall_seconds"] == 60.0
