"""Recipes end to end on Pong with tiny settings, and their runs loaded back through the zoo."""

from __future__ import annotations

import json
import sys
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import rlattack.zoo
from agents import a2c, a3c, entropy, ppo
from agents.export import bundle
from agents.onpolicy import train
from rlattack.cli import main as cli
from rlattack.errors import UserInputError
from rlattack.networks import nature_cnn
from rlattack.observations import OBS_SHAPE
from rlattack.sb3 import load_sb3
from rlattack.zoo import load_victim

X = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (4, *OBS_SHAPE)), dtype=torch.float32) / 255

TINY = {"n_envs": 2, "n_steps": 32, "total_timesteps": 192, "checkpoint_every": 64, "device": "cpu"}
RECIPES = {
    "a2c": (a2c.A2C, a2c.Args, {}),
    "ppo": (ppo.PPO, ppo.Args, {"batch_size": 32, "n_epochs": 1}),
}


@pytest.mark.parametrize("name", RECIPES)
def test_on_policy_recipe_trains_checkpoints_and_loads_through_the_zoo(name, tmp_path, monkeypatch) -> None:
    algorithm, args_class, small = RECIPES[name]
    run_dir = tmp_path / "run"
    train(algorithm, args_class(run_dir=run_dir, **TINY, **small))
    assert {"checkpoint.zip", "weights.safetensors", "curve.csv", "run.json"} <= {
        p.name for p in run_dir.iterdir()
    }
    record = json.loads((run_dir / "run.json").read_text())
    assert record["algorithm"] == name and record["command"].startswith(f"python -m agents.{name}")
    assert record["timesteps"] == 192 and record["frames"] == 4 * 192
    monkeypatch.setattr(rlattack.zoo, "ZOO", tmp_path / "zoo")
    bundle(run_dir, tmp_path / "zoo" / f"pong-{name}")
    victim = load_victim(f"pong-{name}")
    assert victim.n_actions == 6
    # The zoo's network gives the trained model's own logits.
    assert torch.allclose(victim(X), load_sb3(run_dir / "checkpoint.zip")(X), atol=1e-5)


def test_on_policy_rerun_continues_from_its_checkpoint(tmp_path) -> None:
    train(a2c.A2C, a2c.Args(run_dir=tmp_path, **TINY))
    before = load_file(str(tmp_path / "weights.safetensors"))
    train(a2c.A2C, a2c.Args(run_dir=tmp_path, **(TINY | {"total_timesteps": 256})))
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["timesteps"] == 256 and len(record["resumed_with"]) == 1
    with zipfile.ZipFile(tmp_path / "checkpoint.zip") as archive:
        data = json.loads(archive.read("data"))
    assert data["_num_timesteps_at_start"] == 192  # the second run started where the first stopped
    after = load_file(str(tmp_path / "weights.safetensors"))
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_a3c_run_becomes_a_zoo_victim_that_rlattack_evaluates(tmp_path, monkeypatch, capsys) -> None:
    run_dir = tmp_path / "run"
    a3c.main(a3c.Args(game="pong", run_dir=run_dir, workers=1, total_timesteps=20, checkpoint_every=10))
    record = json.loads((run_dir / "run.json").read_text())
    assert record["network"] == "nature-cnn" and record["frames"] == 4 * record["timesteps"] >= 80
    monkeypatch.setattr(rlattack.zoo, "ZOO", tmp_path / "zoo")
    meta = bundle(run_dir, tmp_path / "zoo" / "pong-a3c")
    assert meta["algorithm"] == "a3c" and meta["n_actions"] == 6
    victim = load_victim("pong-a3c")
    own = nature_cnn(6)
    own.load_state_dict(load_file(str(run_dir / "weights.safetensors")))
    with torch.no_grad():
        assert torch.allclose(victim(X), own(X * 255))
    out = tmp_path / "eval.json"
    argv = ["rlattack", "eval", "--agent", "pong-a3c", "--attack", "fgsm", "--eps", "0.004"]
    monkeypatch.setattr(
        sys, "argv", [*argv, "--episodes", "1", "--envs", "1", "--json", str(out), "--no-progress"]
    )
    with pytest.raises(SystemExit) as exit_info:
        cli()
    assert not exit_info.value.code
    summary = json.loads(out.read_text())["summary"]
    assert summary["episodes"] == 1 and summary["linf_mean"] == pytest.approx(0.004, rel=1e-4)


def test_entropy_spread_of_known_distributions() -> None:
    uniform = entropy.spread(torch.zeros(3, 6))
    assert uniform.entropy == pytest.approx(np.log(6)) == pytest.approx(uniform.uniform)
    assert uniform.top_probability == pytest.approx(1 / 6) and uniform.near_deterministic == 0.0
    logits = torch.tensor([[10.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])  # one near-certain state
    mixed = entropy.spread(logits)
    certain = torch.softmax(logits[0], 0)
    assert mixed.entropy == pytest.approx((-(certain * certain.log()).sum().item() + np.log(4)) / 2)
    assert mixed.near_deterministic == 0.5 and mixed.uniform == pytest.approx(np.log(4))


def test_entropy_refuses_q_values_and_measures_a_policy() -> None:
    with pytest.raises(UserInputError, match="q-values"):
        entropy.measure(entropy.Args(agent="pong-dqn", game="pong", steps=1))
    with pytest.raises(UserInputError, match="at least one step"):
        entropy.measure(entropy.Args(agent="pong-a3c", game="pong", steps=0))
    measured = entropy.measure(entropy.Args(agent="pong-a3c", game="pong", steps=5, envs=2))
    assert 0.0 <= measured.entropy <= measured.uniform == pytest.approx(np.log(6))
