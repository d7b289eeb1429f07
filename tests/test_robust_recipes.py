"""The defended-victim recipes: SA-DQN's regulariser and adversarial training's states."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from torch import nn

from agents.advtrain import Args as AdvArgs
from agents.advtrain import perturb
from agents.robust_dqn import TrainingNetwork, train_robust
from agents.sadqn import Args as SaArgs
from agents.sadqn import SaDQN, pgd_regulariser, sa_regulariser
from rlattack.certify import certified
from rlattack.zoo import ZOO


def linear_network(w: torch.Tensor, b: torch.Tensor) -> TrainingNetwork:
    net = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        net.weight.copy_(w)
        net.bias.copy_(b)
    return TrainingNetwork(net, w.shape[0], (w.shape[1],), input_scale=1.0)


def test_the_regulariser_is_zero_where_the_margin_clears_the_hinge_and_positive_where_not() -> None:
    # Q_0 - Q_1 = 2 x_0 - 1: at x_0 = 0.9 the margin is 0.8, and 0.8 - 2 * eps in the ball
    network = linear_network(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), torch.tensor([-0.5, 0.5]))
    clear, short = torch.tensor([[0.9, 0.5]]), torch.tensor([[0.6, 0.5]])
    eps, hinge = 0.05, 0.5
    assert sa_regulariser(network, clear, eps, hinge).item() == 0.0  # 0.8 - 0.1 = 0.7 >= 0.5
    assert sa_regulariser(network, short, eps, hinge).item() == pytest.approx(0.5 - (0.2 - 0.1))
    both = sa_regulariser(network, torch.cat([clear, short]), eps, hinge)
    assert both.item() == pytest.approx(0.4 / 2)  # the mean over the batch


def test_its_gradient_reaches_the_weights_and_not_the_observations() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 4, 4, 2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 3))
    network = TrainingNetwork(net, 3, (4, 8, 8), input_scale=255.0)
    x = torch.rand(5, 4, 8, 8, requires_grad=True)
    sa_regulariser(network, x, 1 / 255, hinge=10.0).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    assert x.grad is None


def test_the_pgd_regulariser_takes_the_margin_at_the_worst_state_of_a_linear_network() -> None:
    # Q_0 - Q_1 = 2 x_0 - 1; the worst state in the ball moves x_0 down by eps: margin 2 (x_0 - eps) - 1
    network = linear_network(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), torch.tensor([-0.5, 0.5]))
    clear, short = torch.tensor([[0.9, 0.5]]), torch.tensor([[0.6, 0.5]])
    eps, hinge = 0.05, 0.5
    assert pgd_regulariser(network, clear, eps, hinge, steps=5, seed=0).item() == 0.0  # 0.7 >= 0.5
    short_value = pgd_regulariser(network, short, eps, hinge, steps=5, seed=0).item()
    assert short_value == pytest.approx(0.5 - 0.1, abs=1e-6)  # the attack reaches the ball's corner
    both = pgd_regulariser(network, torch.cat([clear, short]), eps, hinge, steps=5, seed=0)
    assert both.item() == pytest.approx(0.4 / 2, abs=1e-6)


def test_the_pgd_regulariser_s_gradient_reaches_the_weights_and_not_the_observations() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(4, 4, 4, 2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 3))
    network = TrainingNetwork(net, 3, (4, 8, 8), input_scale=255.0)
    x = torch.rand(5, 4, 8, 8, requires_grad=True)
    pgd_regulariser(network, x, 1 / 255, hinge=10.0, steps=3, seed=0).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    assert x.grad is None


def fit(kappa: float, eps: float, seed: int = 0) -> tuple[TrainingNetwork, torch.Tensor]:
    """A CartPole-sized Q-network (4 inputs, 2 actions) fitted to a teacher's Q-values, with SA's
    regulariser weighted by `kappa`; returns it and held-out states."""
    torch.manual_seed(seed)
    teacher = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 2))
    student = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    network = TrainingNetwork(student, 2, (4,), input_scale=1.0)
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    x, held_out = torch.rand(512, 4), torch.rand(256, 4)
    with torch.no_grad():
        target = teacher(x)
    for _ in range(300):
        loss = nn.functional.mse_loss(network(x), target)
        if kappa:
            loss = loss + kappa * sa_regulariser(network, x, eps, hinge=0.2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return network, held_out


def test_a_short_sa_run_certifies_more_actions_than_a_vanilla_one() -> None:
    rates = {}
    for kappa in (0.0, 1.0):
        network, held_out = fit(kappa, eps=0.2)
        rates[kappa] = certified(network, held_out, 0.2).float().mean().item()
    assert rates[1.0] > rates[0.0] + 0.5, rates  # measured: 1.0 against 0.0


def test_adversarial_training_states_stay_in_the_ball_and_in_range() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(4, 4, 4, 2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 3 * 3, 3))
    network = TrainingNetwork(net, 3, (4, 8, 8))
    x = torch.rand(64, 4, 8, 8)
    for attack in ("pgd", "fgsm"):
        args = AdvArgs(attack=attack, share=0.5, attack_steps=3)
        seen = perturb(network, x, args, eps=4 / 255, seed=3)
        moved = (seen - x).flatten(1).abs().amax(1)
        assert (moved <= 4 / 255 + 1e-6).all() and seen.min() >= 0 and seen.max() <= 1
        assert 0 < (moved > 0).sum() < len(x)  # about half the states, not all, not none
        assert all(p.grad is None for p in net.parameters())
    assert torch.equal(perturb(network, x, AdvArgs(share=1.0), eps=0.0, seed=3), x)  # eps 0: clean


@pytest.mark.slow  # 10-20 s each: SB3 training runs in their own processes
@pytest.mark.parametrize("recipe", ["sadqn", "advtrain"])
def test_a_robust_recipe_fine_tunes_a_zoo_dqn_and_records_where_it_started(recipe, tmp_path) -> None:
    run_dir = tmp_path / recipe
    common = [
        "--run-dir",
        str(run_dir),
        "--learning-starts",
        "100",
        "--buffer-size",
        "1000",
        "--threads",
        "1",
    ]
    command = [sys.executable, "-m", f"agents.{recipe}", *common, "--ramp-steps", "100"]
    subprocess.run(
        [*command, "--init-from", "agents/zoo/pong-dqn", "--total-timesteps", "850201"], check=True
    )
    record = json.loads((run_dir / "run.json").read_text())
    assert record["recipe"] == recipe and record["algorithm"] == "dqn"
    assert record["init_from"]["timesteps"] == 850001 and record["timesteps"] == 850201
    subprocess.run([*command, "--total-timesteps", "850301"], check=True)  # resumes its own run
    record = json.loads((run_dir / "run.json").read_text())
    assert record["timesteps"] == 850301 and record["resumed_with"][0].startswith(
        f"python -m agents.{recipe}"
    )


def test_a_bundled_robust_victim_continues_its_own_run_and_its_eps_ramp(tmp_path) -> None:
    # an SA victim bundled 50k steps into a linear 100k-step ramp that began at pong-dqn's step
    victim = tmp_path / "pong-dqn-sa"
    victim.mkdir()
    for name in ("weights.safetensors", "curve.csv"):
        shutil.copyfile(ZOO / "pong-dqn" / name, victim / name)
    meta = json.loads((ZOO / "pong-dqn" / "meta.json").read_text())
    started = {"victim": "agents/zoo/pong-dqn", "timesteps": 850001, "frames": 3400004}
    meta |= {"recipe": "sadqn", "init_from": started, "timesteps": 900001, "frames": 3600004}
    (victim / "meta.json").write_text(json.dumps(meta))
    run_dir = tmp_path / "run"
    args = SaArgs(
        run_dir=run_dir,
        init_from=victim,
        total_timesteps=900001,
        buffer_size=1000,
        ramp="linear",
        ramp_delay=0,
        ramp_steps=100_000,
    )
    model = train_robust(SaDQN, args, "sadqn")  # already at its total: nothing to train
    assert model.num_timesteps == 900001
    assert model.eps_now() == pytest.approx(args.eps / 2)  # half-way, not back at 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["recipe"] == "sadqn" and record["init_from"] == started
