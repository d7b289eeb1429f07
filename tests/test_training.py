"""Training runs: checkpoints survive, and a shipped victim can be trained further elsewhere."""

from __future__ import annotations

import json
import os
import signal
import sys
import zipfile

import pytest
import torch
from stable_baselines3 import DQN, PPO

from agents.envs import Sb3VecEnv
from agents.training import CtrlC, RunLog, continue_from_victim
from rlattack.weights import load_weights, save_weights
from tests.conftest import stop_with_ctrl_c


def _dqn(seed: int) -> DQN:
    return DQN("CnnPolicy", Sb3VecEnv("pong", 1, seed=0), buffer_size=10, learning_starts=100, seed=seed)


def test_continue_from_a_victim_takes_its_weights_steps_record_and_curve(tmp_path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    trained = _dqn(seed=1)
    save_weights(trained.policy, victim / "weights.safetensors")
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
    curve = "timesteps,frames,score,length\n4000,16000,-20,900\n"
    (victim / "curve.csv").write_text(curve)
    fresh = _dqn(seed=2)
    assert continue_from_victim(fresh.policy, victim, tmp_path) == 5000
    for net in (fresh.policy.q_net, fresh.policy.q_net_target):
        for ours, theirs in zip(
            net.state_dict().values(), trained.policy.q_net.state_dict().values(), strict=True
        ):
            assert torch.equal(ours, theirs)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["frames"] == 20000 and record["wall_seconds"] == 60.0
    assert (tmp_path / "curve.csv").read_text() == curve


def test_shared_feature_extractor_is_stored_once_and_restored_under_every_name(tmp_path) -> None:
    def ppo(seed: int) -> PPO:
        return PPO("CnnPolicy", Sb3VecEnv("pong", 1, seed=0), n_steps=8, batch_size=8, seed=seed)

    trained, fresh = ppo(seed=1), ppo(seed=2)
    save_weights(trained.policy, tmp_path / "w.safetensors")
    load_weights(fresh.policy, tmp_path / "w.safetensors")
    assert fresh.policy.pi_features_extractor is fresh.policy.vf_features_extractor
    for ours, theirs in zip(
        fresh.policy.state_dict().values(), trained.policy.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs)
    with pytest.raises(ValueError, match="do not fit"):
        load_weights(_dqn(seed=0).policy, tmp_path / "w.safetensors")


def test_curve_drops_games_played_after_the_checkpoint_it_resumes_from(tmp_path) -> None:
    (tmp_path / "curve.csv").write_text("timesteps,frames,score,length\n100,400,-21,90\n300,1200,-20,95\n")
    log = RunLog(tmp_path, {"wall_seconds": 10.0}, frames_per_step=4, resumed_at=200, total=1_000)
    log.add_games([(250, -19.0, 80)])
    log.advance(260)
    assert (log.bar.n, log.bar.total, log.bar.postfix) == (260, 1_000, "score=-19.0")
    log.save(260)
    lines = (tmp_path / "curve.csv").read_text().splitlines()
    assert lines == ["timesteps,frames,score,length", "100,400,-21,90", "250,1000,-19.0,80"]
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["timesteps"] == 260 and record["frames"] == 1040 and record["wall_seconds"] >= 10.0


def test_a_first_ctrl_c_asks_to_stop_and_a_second_interrupts_at_once() -> None:
    before = signal.getsignal(signal.SIGINT)
    with CtrlC() as ctrl_c:
        assert not ctrl_c.pressed
        os.kill(os.getpid(), signal.SIGINT)  # handled before the next bytecode: no exception here
        assert ctrl_c.pressed
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_saves_an_sb3_run_where_it_got_to(tmp_path) -> None:
    command = [sys.executable, "-m", "agents.a2c", "--run-dir", str(tmp_path), "--n-envs", "2"]
    command += ["--total-timesteps", "10000000", "--checkpoint-every", "10000000", "--device", "cpu"]
    training = lambda: (tmp_path / "curve.csv").exists()  # noqa: E731 (written when training starts)
    stop_with_ctrl_c(command, training, after=3)
    record = json.loads((tmp_path / "run.json").read_text())
    with zipfile.ZipFile(tmp_path / "checkpoint.zip") as archive:
        saved = json.loads(archive.read("data"))["num_timesteps"]
    assert saved == record["timesteps"] > 0  # far below the first periodic checkpoint
    assert (tmp_path / "weights.safetensors").exists()
