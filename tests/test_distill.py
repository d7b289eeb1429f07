"""Certified distillation (`agents.distill`): its loss, its schedule, its checkpoint and its victim."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from agents.distill import Args, Run, robust_loss, schedule
from rlattack.networks import small_cnn
from rlattack.observations import OBS_SHAPE
from rlattack.policies import Policy
from rlattack.safetensors_agent import load_safetensors_agent, save_safetensors_agent


@pytest.fixture(scope="module")
def student() -> Policy:
    torch.manual_seed(0)
    return Policy(small_cnn(6), 6, name="student")


def test_loss_at_zero_eps_is_cross_entropy_and_the_bound_only_adds(student: Policy) -> None:
    x, y = torch.rand(4, *OBS_SHAPE), torch.tensor([0, 1, 2, 5])
    clean, _ = robust_loss(student, x, y, 0.0, 0.5)
    torch.testing.assert_close(clean, F.cross_entropy(student(x), y, reduction="none"))
    worst, _ = robust_loss(student, x, y, 1 / 255, 0.0)  # CE at the bounds' worst case only
    assert (worst >= clean - 1e-6).all()
    wider, _ = robust_loss(student, x, y, 4 / 255, 0.0)
    assert (wider >= worst - 1e-6).all()


def test_schedule_warms_up_then_ramps() -> None:
    args = Args(eps="2/255", kappa=0.5, warmup=100, ramp=200)
    assert schedule(args, 0) == (0.0, 1.0) == schedule(args, 100)
    eps, kappa = schedule(args, 200)
    assert eps == pytest.approx(1 / 255) and kappa == pytest.approx(0.75)
    assert schedule(args, 300) == schedule(args, 10_000) == (pytest.approx(2 / 255), 0.5)


@pytest.mark.parametrize("field", ["eps", "attack_eps"])
def test_a_bad_budget_is_refused_with_the_arguments(field: str) -> None:
    assert Args(**{field: "1.5/255"})  # half gray levels are budgets too
    with pytest.raises(ValueError, match="fraction like 2/255"):
        Args(**{field: "two/255"})


def test_checkpoint_restores_the_student_and_its_optimizer(tmp_path: Path) -> None:
    args = Args(run_dir=tmp_path)
    run = Run(args, 6)
    loss, _ = robust_loss(run.policy, torch.rand(2, *OBS_SHAPE), torch.tensor([1, 2]), 1 / 255, 0.5)
    loss.sum().backward()
    run.optimizer.step()
    run.round, run.round_updates, run.updates, run.timesteps = 3, 7, 907, 12345
    run.save(tmp_path / "checkpoint.safetensors")
    back = Run(Args(run_dir=tmp_path, seed=2), 6)
    back.load(tmp_path / "checkpoint.safetensors")
    assert (back.round, back.round_updates, back.updates, back.timesteps) == (3, 7, 907, 12345)
    for a, b in zip(run.net.parameters(), back.net.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(run.optimizer.state.values(), back.optimizer.state.values(), strict=True):
        assert all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in a)


def test_the_student_loads_as_a_safetensors_agent(tmp_path: Path, student: Policy) -> None:
    path = tmp_path / "student.safetensors"
    save_safetensors_agent(student.net, path, "distill", 6, network="small-cnn")
    loaded = load_safetensors_agent(path)
    x = torch.rand(3, *OBS_SHAPE)
    torch.testing.assert_close(loaded(x), student(x))
