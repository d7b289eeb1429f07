"""Small models and SB3 checkpoints shared by the tests."""

from __future__ import annotations

import math
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from rlattack.policies import Policy

# One torch thread per test process: with more, OpenMP threads spin against each other whenever
# the two cores are shared (another process, Ray workers), and tests slow down 10-30x.
torch.set_num_threads(1)

SMALL_SHAPE = (4, 8, 8)


def tiny_net(n_actions: int = 3, seed: int = 0) -> nn.Module:
    """A conv net small enough for property tests, shaped like an Atari policy."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(4, 6, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 6 * 6, 16),
        nn.Tanh(),
        nn.Linear(16, n_actions),
    )


@pytest.fixture
def tiny_policy() -> Policy:
    return small_policy()


def small_policy() -> Policy:
    """The tiny conv net in float64 as a 3-action policy on [0, 1] inputs (for property tests,
    which cannot take function-scoped fixtures)."""
    return Policy(tiny_net().double(), n_actions=3, obs_shape=SMALL_SHAPE, input_scale=1.0)


def small_batch(seed: int, n: int = 4) -> torch.Tensor:
    """`n` seeded float64 observations of the small shape."""
    return torch.rand(n, *SMALL_SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def assert_in_ball_and_range(result: Any, x: torch.Tensor, eps: float, norm: str, surface: str) -> None:
    """An iterative attack's result stays in [0, 1], within its budget (L-inf eps, L2 eps * sqrt(d)
    with d the changeable features), and leaves the older frames alone on the `frame` surface."""
    d = math.prod(SMALL_SHAPE) if surface == "stack" else math.prod(SMALL_SHAPE[1:])
    assert result.adv.min() >= 0 and result.adv.max() <= 1
    bound = result.linf if norm == "inf" else result.l2
    assert (bound <= (eps if norm == "inf" else eps * math.sqrt(d)) + 1e-9).all()
    if surface == "frame":
        assert torch.equal(result.adv[:, :-1], x[:, :-1])


class Logistic(nn.Module):
    """Two actions whose softmax is the logistic model sigmoid(w . x) for action 1."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x @ self.w
        return torch.stack([torch.zeros_like(z), z], dim=1)


@pytest.fixture(scope="session")
def sb3_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Freshly initialised SB3 Atari models of each supported algorithm, saved as `.zip`."""
    from sb3_contrib import QRDQN, TRPO
    from stable_baselines3 import A2C, DQN, PPO

    from agents.envs import Sb3VecEnv

    folder = tmp_path_factory.mktemp("sb3")
    paths = {}
    for name, cls, kwargs in [
        ("dqn", DQN, {"buffer_size": 10}),
        ("qrdqn", QRDQN, {"buffer_size": 10}),
        ("ppo", PPO, {"n_steps": 8, "batch_size": 8}),
        ("a2c", A2C, {"n_steps": 8}),
        ("trpo", TRPO, {"n_steps": 8, "batch_size": 8}),
    ]:
        env = Sb3VecEnv("pong", num_envs=1, seed=0)
        model = cls("CnnPolicy", env, seed=0, device="cpu", **kwargs)
        paths[name] = folder / f"{name}.zip"
        model.save(paths[name])
        env.close()
    env = Sb3VecEnv("breakout", num_envs=1, seed=0)
    paths["breakout-dqn"] = folder / "breakout-dqn.zip"
    DQN("CnnPolicy", env, buffer_size=10, seed=0, device="cpu").save(paths["breakout-dqn"])
    env.close()
    return paths


def scripted_agent(path: Path, n_actions: int, seed: int) -> str:
    """A TorchScript Atari policy with `n_actions`, cheap enough to play whole games in a second."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.AvgPool2d(6), nn.Flatten(), nn.Linear(4 * 14 * 14, n_actions))
    torch.jit.script(net).save(str(path))
    return f"torch:{path}"


@pytest.fixture(scope="session")
def tiny_atari_agent(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A TorchScript Pong policy (6 actions)."""
    return scripted_agent(tmp_path_factory.mktemp("agents") / "tiny.pt", 6, seed=0)


def stop_with_ctrl_c(command: list[str], ready: Callable[[], bool], after: float = 0.0) -> None:
    """Start `command`, send it Ctrl-C once `ready()` holds (and `after` seconds more) and fail,
    with its stderr, unless it then exits cleanly; it is killed, never left running."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"{command[2]} stopped or never got ready: {process.communicate()[1][-2000:]}")
            time.sleep(0.2)
        time.sleep(after)
        process.send_signal(signal.SIGINT)
        stderr = process.communicate(timeout=60)[1]
        if process.returncode != 0:
            pytest.fail(f"{command[2]} exited {process.returncode} after Ctrl-C: {stderr[-3000:]}")
    finally:
        process.kill()  # a no-op once it has exited
