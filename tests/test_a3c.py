"""Our A3C: Hogwild updates reach the shared network, runs resume, and it learns CartPole."""

from __future__ import annotations

import csv
import json
import multiprocessing
import queue
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from agents.a3c import Args, SharedRMSprop, Worker, main, make_train_env
from benchmarks.training_speed import step_by_step_loss
from rlattack.networks import build_network, mlp, nature_cnn
from rlattack.weights import load_weights
from tests.conftest import stop_with_ctrl_c


def _cartpole(run_dir: Path, **kwargs) -> Args:
    """Settings that reached 195 in 16 of 16 runs of 50k steps (2 workers, 25-31 s on 2 busy cores)."""
    defaults = {"workers": 2, "learning_rate": 1e-2, "rmsprop_eps": 0.1, "checkpoint_every": 1_000}
    return Args(game="CartPole-v1", run_dir=run_dir, **(defaults | kwargs))


def _curve(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "curve.csv").open() as f:
        return list(csv.DictReader(f))


def _greedy_score(network: torch.nn.Module, episodes: int = 10) -> float:
    env = gym.make("CartPole-v1")
    scores = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=10_000 + episode)
        done, score = False, 0.0
        while not done:
            with torch.no_grad():
                action = int(network(torch.as_tensor(obs)[None]).argmax())
            obs, reward, terminated, truncated, _ = env.step(action)
            score, done = score + float(reward), terminated or truncated
        scores.append(score)
    return float(np.mean(scores))


def test_a_worker_update_is_one_shared_rmsprop_step_on_the_shared_network() -> None:
    torch.manual_seed(0)
    shared = nature_cnn(6).share_memory()
    args = Args(game="pong", t_max=5, total_timesteps=1_000, rmsprop_alpha=0.9)
    optimizer = SharedRMSprop(shared, args.rmsprop_alpha, args.rmsprop_eps)
    steps = multiprocessing.Value("q", 0)
    worker = Worker(0, args, shared, optimizer, steps, queue.Queue())
    before = {k: v.clone() for k, v in shared.named_parameters()}
    assert worker.update() == 5  # a Pong point takes longer than 5 steps
    assert steps.value == 5
    lr = args.learning_rate * (1 - 5 / args.total_timesteps)
    for name, param in shared.named_parameters():
        grad = dict(worker.local.named_parameters())[name].grad
        square_avg = (1 - args.rmsprop_alpha) * grad**2
        assert torch.allclose(optimizer.square_avg[name], square_avg)
        expected = before[name] - lr * grad / (square_avg + args.rmsprop_eps).sqrt()
        assert torch.allclose(param, expected, atol=1e-7)
    assert any(not torch.equal(before[k], v) for k, v in shared.named_parameters())
    worker.update()  # the next rollout starts from what the shared network now holds
    assert steps.value == 10


def test_the_batched_rollout_loss_has_the_gradient_of_its_steps_one_by_one() -> None:
    torch.manual_seed(0)
    shared = nature_cnn(6)
    args = Args(game="pong", entropy_coef=0.05)
    worker = Worker(
        0, args, shared, SharedRMSprop(shared, 0.99, 1e-5), multiprocessing.Value("q", 0), queue.Queue()
    )
    observations = torch.randint(0, 256, (7, 4, 84, 84)).float()
    actions, returns = torch.randint(0, 6, (7,)), torch.randn(7)
    worker.local.zero_grad()
    worker.loss(observations, actions, returns).backward()
    batched = {k: p.grad.clone() for k, p in worker.local.named_parameters()}
    worker.local.zero_grad()
    step_by_step_loss(worker, observations, actions, returns).backward()  # what the benchmark times
    for k, p in worker.local.named_parameters():
        assert torch.allclose(batched[k], p.grad, rtol=1e-4, atol=1e-6), k
    assert any(g.abs().sum() > 0 for g in batched.values())


def test_workers_in_their_own_processes_train_the_shared_network(tmp_path) -> None:
    args = _cartpole(tmp_path, total_timesteps=3_000)
    main(args)
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["algorithm"] == "a3c" and record["network"] == "mlp"
    # Workers finish their rollout after the budget is reached: at most t_max steps each.
    assert 3_000 <= record["timesteps"] < 3_000 + args.workers * args.t_max
    # The counter holds the steps of both workers: the finished games account for all but the
    # (at most two, each under 500 steps) games still being played.
    played = sum(int(row["length"]) for row in _curve(tmp_path))
    assert record["timesteps"] - 2 * 500 <= played <= record["timesteps"]
    torch.manual_seed(args.seed)
    initial = mlp(4, 2)
    trained = load_file(str(tmp_path / "checkpoint.safetensors"))
    assert all(not torch.equal(trained[f"network.{k}"], v) for k, v in initial.state_dict().items())
    # The RMSProp statistics the workers built up live in the main process's memory too.
    assert all(trained[f"rmsprop.{k}"].abs().sum() > 0 for k in initial.state_dict())


def test_a_rerun_continues_from_the_checkpoint(tmp_path) -> None:
    args = _cartpole(tmp_path, workers=1, total_timesteps=1_000)
    main(args)
    first = load_file(str(tmp_path / "checkpoint.safetensors"))
    games = _curve(tmp_path)
    main(args)  # nothing left to do: what it saves again is what it loaded
    again = load_file(str(tmp_path / "checkpoint.safetensors"))
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)  # network, RMSProp state, step
    main(_cartpole(tmp_path, workers=1, total_timesteps=2_000))
    record = json.loads((tmp_path / "run.json").read_text())
    assert len(record["resumed_with"]) == 2
    assert 2_000 <= record["timesteps"] < 2_000 + args.t_max
    assert _curve(tmp_path)[: len(games)] == games


def test_a3c_learns_cartpole(tmp_path) -> None:
    """The issue's bar: 195 on CartPole-v1 by the greedy policy the trainer ships.

    The training games sample actions, so their mean is noisier: it is asked only to be far
    above random play (about 22); once, on a box crowded by 18 other processes, it ended at 146.
    """
    main(_cartpole(tmp_path, total_timesteps=50_000))
    assert np.mean([float(row["score"]) for row in _curve(tmp_path)[-20:]]) >= 100
    network = build_network("mlp", (4,), 2)
    load_weights(network, tmp_path / "weights.safetensors")
    assert _greedy_score(network) >= 195


def test_ctrl_c_stops_the_workers_and_saves_where_they_got_to(tmp_path) -> None:
    command = [sys.executable, "-m", "agents.a3c", "--game", "CartPole-v1", "--workers", "2"]
    command += ["--run-dir", str(tmp_path), "--total-timesteps", "10000000", "--checkpoint-every", "10000000"]
    games_played = lambda: (tmp_path / "curve.csv").exists() and len(_curve(tmp_path)) >= 5  # noqa: E731
    stop_with_ctrl_c(command, games_played)
    record = json.loads((tmp_path / "run.json").read_text())
    saved = int(load_file(str(tmp_path / "checkpoint.safetensors"))["timesteps"])
    curve = _curve(tmp_path)
    # No periodic checkpoint came before the interrupt; every game reported is in the curve, and
    # no game is reported before its steps are counted.
    assert saved == record["timesteps"] >= sum(int(row["length"]) for row in curve) > 0
    assert max(int(row["timesteps"]) for row in curve) <= saved


def test_life_loss_on_a_game_without_lives_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="--life-loss needs an Atari game"):
        make_train_env("CartPole-v1", seed=1, life_loss=True)
