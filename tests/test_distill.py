"""Certified distillation (`agents.distill`): its loss, its schedule, its checkpoint and its victim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.distill import Args, Run, load_round, robust_loss, schedule, teacher_labels, teacher_outputs
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


@pytest.mark.parametrize("eps", [0.0, 1 / 255])
def test_soft_targets_at_a_small_temperature_on_a_clear_gap_are_the_hard_label(
    student: Policy, eps: float
) -> None:
    x, y = torch.rand(4, *OBS_SHAPE), torch.tensor([0, 1, 2, 5])
    q = torch.rand(4, 6) * 0.1
    q[torch.arange(4), y] = 1.0  # gaps of 0.9 or more, at a temperature of 0.01
    hard, _ = robust_loss(student, x, y, eps, 0.5)
    soft, _ = robust_loss(student, x, y, eps, 0.5, (q / 0.01).softmax(dim=1))
    torch.testing.assert_close(soft, hard)


def test_a_tie_asks_for_both_actions_and_the_bound_keeps_the_label(student: Policy) -> None:
    x, y = torch.rand(2, *OBS_SHAPE), torch.tensor([1, 3])
    target = torch.zeros(2, 6)
    target[0, [1, 4]] = target[1, [3, 0]] = 0.5
    logits = student(x)
    both = (
        F.cross_entropy(logits, y, reduction="none")
        + F.cross_entropy(logits, torch.tensor([4, 0]), reduction="none")
    ) / 2
    clean, _ = robust_loss(student, x, y, 0.0, 0.5, target)
    torch.testing.assert_close(clean, both)
    hard, _ = robust_loss(student, x, y, 1 / 255, 0.5)
    soft, _ = robust_loss(student, x, y, 1 / 255, 0.5, target)  # only the clean term moves
    torch.testing.assert_close(soft - hard, 0.5 * (both - F.cross_entropy(logits, y, reduction="none")))


@pytest.mark.parametrize("soft", [-0.01, float("nan"), float("inf")])
def test_a_bad_temperature_is_refused_with_the_arguments(soft: float) -> None:
    assert Args(soft=0.0).soft == 0.0 and Args(soft=0.01).soft == 0.01
    with pytest.raises(ValueError, match="soft must be a temperature >= 0"):
        Args(soft=soft)


def test_a_round_without_the_teachers_outputs_gets_them_and_a_hard_link_keeps_the_old_file(
    tmp_path: Path, student: Policy
) -> None:
    obs = np.random.default_rng(0).integers(0, 256, (5, *OBS_SHAPE), dtype=np.uint8)
    labels, gaps = teacher_labels(teacher_outputs(student, obs))
    old, linked = tmp_path / "round-00.npz", tmp_path / "run" / "round-00.npz"
    np.savez(old, obs=obs, labels=labels.numpy(), gaps=gaps.numpy())
    linked.parent.mkdir()
    linked.hardlink_to(old)
    found = load_round(linked, student)
    torch.testing.assert_close(torch.as_tensor(found["outputs"]), student(torch.as_tensor(obs).float() / 255))
    assert "outputs" in np.load(linked) and "outputs" not in np.load(old)
    np.savez(old, obs=obs, labels=(labels.numpy() + 1) % 6, gaps=gaps.numpy())  # another teacher's
    with pytest.raises(ValueError, match="takes its labels at 0%"):
        load_round(old, student)


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
