"""The TRPO recipe: its step against an exact natural gradient, its KL bound, CartPole, its runs."""

from __future__ import annotations

import csv
import json
import os
import signal
import threading

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import Tensor, nn
from torch.func import functional_call

import rlattack.zoo
from agents import trpo
from agents.export import bundle
from agents.natural_gradient import (
    FisherVectorProduct,
    PolicyBatch,
    conjugate_gradient,
    flatten,
    natural_step,
    surrogate_and_kl,
    unflatten,
)
from rlattack.errors import UserInputError
from rlattack.observations import OBS_SHAPE
from rlattack.zoo import load_victim

N_STATES, N_ACTIONS = 24, 4


def tiny_policy(kind: str) -> tuple[nn.Sequential, Tensor]:
    """A float64 policy of each layer kind the forward-mode products know, and states for it."""
    torch.manual_seed(0)
    if kind == "mlp":
        policy = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, N_ACTIONS))
        obs = torch.randn(N_STATES, 3)
    else:
        policy = nn.Sequential(nn.Conv2d(2, 2, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8, N_ACTIONS))
        obs = torch.randn(N_STATES, 2, 5, 5)
    with torch.no_grad():  # logits of a few units, so the policy is far from uniform
        for p in policy.parameters():
            p.mul_(3.0)
    return policy.double(), obs.double()


def fixed_batch(policy: nn.Sequential, obs: Tensor, seed: int = 0) -> PolicyBatch:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        old = policy(obs).log_softmax(-1)
    return PolicyBatch(
        obs=obs,
        actions=torch.randint(0, N_ACTIONS, (len(obs),), generator=generator),
        advantages=torch.randn(len(obs), generator=generator, dtype=torch.float64),
        old_log_probs=old,
    )


def as_function(policy: nn.Sequential, batch: PolicyBatch, entropy_coef: float):
    """The surrogate and the mean KL as functions of one flat parameter vector, written out
    afresh (not with the recipe's code) for autograd's exact gradient and Hessian."""
    names = [name for name, _ in policy.named_parameters()]
    shapes = list(policy.parameters())

    def logits(theta: Tensor) -> Tensor:
        return functional_call(policy, dict(zip(names, unflatten(theta, shapes), strict=True)), (batch.obs,))

    def surrogate(theta: Tensor) -> Tensor:
        log_probs = logits(theta).log_softmax(-1)
        taken = torch.arange(len(batch.actions)), batch.actions
        ratio = (log_probs[taken] - batch.old_log_probs[taken]).exp()
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        return (ratio * batch.advantages).mean() + entropy_coef * entropy.mean()

    def kl(theta: Tensor) -> Tensor:
        old = batch.old_log_probs
        return (old.exp() * (old - logits(theta).log_softmax(-1))).sum(-1).mean()

    return surrogate, kl


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_fisher_vector_products_are_the_hessian_of_the_mean_kl(kind) -> None:
    policy, obs = tiny_policy(kind)
    batch = fixed_batch(policy, obs)
    _, kl = as_function(policy, batch, 0.0)
    theta = flatten(p.detach() for p in policy.parameters())
    hessian = torch.autograd.functional.hessian(kl, theta)
    product = FisherVectorProduct(policy, obs, damping=0.1)
    v = torch.randn(len(theta), dtype=torch.float64)
    # float64 throughout: both sides are exact up to round-off (~1e-15 relative)
    assert torch.allclose(product(v), hessian @ v + 0.1 * v, rtol=1e-9, atol=1e-12)
    assert (hessian @ v).norm() > 1e-3 * v.norm()  # the comparison has something to compare


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_step_is_the_exact_natural_gradient_scaled_to_the_kl_bound(kind) -> None:
    policy, obs = tiny_policy(kind)
    batch = fixed_batch(policy, obs)
    entropy_coef, damping, max_kl = 0.01, 0.1, 1e-4
    surrogate, kl = as_function(policy, batch, entropy_coef)
    theta = flatten(p.detach() for p in policy.parameters()).clone()
    g = torch.func.grad(surrogate)(theta)
    fisher = torch.autograd.functional.hessian(kl, theta) + damping * torch.eye(
        len(theta), dtype=torch.float64
    )
    exact = torch.linalg.solve(fisher, g)
    exact_step = exact * torch.sqrt(2 * max_kl / (exact @ fisher @ exact))

    # The direction alone, CG run to the end: as many iterations as parameters solve the system
    # exactly but for round-off, which in float64, on a system the damping keeps at a condition
    # number below ~1e4, stays below 1e-10 relative; 1e-8 allows for CG's loss of orthogonality.
    product = FisherVectorProduct(policy, obs, damping)
    direction, _ = conjugate_gradient(product, g, iterations=len(theta), tolerance=0.0)
    assert torch.allclose(direction, exact, rtol=1e-8, atol=1e-10 * exact.abs().max())

    # The step the recipe takes. Its CG stops once the residual's squared norm is below 1e-10;
    # (F + damping I)^-1 has norm at most 1 / damping, so the direction is then off by at most
    # 1e-5 / damping, and its unit vector by twice that over its length. A wrong Fisher (the
    # plain gradient, a missing mean, no damping) is off by more than 1e-2.
    report = natural_step(policy, batch, obs, max_kl, entropy_coef, cg_iterations=len(theta), damping=damping)
    step = flatten(p.detach() for p in policy.parameters()) - theta
    tolerance = 2 * 1e-5 / damping / exact.norm()
    assert tolerance < 1e-3  # tight enough to tell the exact step from a wrong one
    assert (step / step.norm() - exact / exact.norm()).norm() <= tolerance
    assert step.norm() == pytest.approx(exact_step.norm().item(), rel=2 * tolerance.item())
    assert report.fraction == 1.0  # the bound is small enough for the quadratic model to hold
    assert report.kl <= max_kl and report.improvement > 0


def test_conjugate_gradient_with_few_iterations_still_returns_its_own_a_x() -> None:
    a = torch.tensor([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]], dtype=torch.float64)
    b = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    x, ax = conjugate_gradient(lambda v: a @ v, b, iterations=2)
    assert torch.allclose(ax, a @ x)  # s'Fs of the step comes from here, without one more product
    x, _ = conjugate_gradient(lambda v: a @ v, b, iterations=3)
    assert torch.allclose(x, torch.linalg.solve(a, b))


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_kl_after_each_accepted_step_is_within_the_bound(kind) -> None:
    policy, obs = tiny_policy(kind)
    max_kl, fractions = 0.05, []
    for step in range(25):
        batch = fixed_batch(policy, obs, seed=step)
        before = [p.detach().clone() for p in policy.parameters()]
        # Little damping and a wide bound: the quadratic model overshoots, and the line search works
        report = natural_step(policy, batch, obs[::3], max_kl, entropy_coef=0.01, damping=1e-3)
        with torch.no_grad():
            after, _ = surrogate_and_kl(policy, batch, 0.01, chunk=7)
            new = policy(obs).log_softmax(-1)
        old = batch.old_log_probs
        measured = (old.exp() * (old - new)).sum(-1).mean()
        at_old = batch.advantages.mean() - 0.01 * (old.exp() * old).sum(-1).mean()  # every ratio 1
        fractions.append(report.fraction)
        if report.fraction > 0:
            assert measured <= max_kl and report.kl == pytest.approx(measured.item())
            assert after > at_old and report.improvement == pytest.approx((after - at_old).item())
        else:  # nothing qualified: the old parameters stay
            assert all(torch.equal(p, q) for p, q in zip(policy.parameters(), before, strict=True))
    assert any(0 < f < 1 for f in fractions)  # the line search had to backtrack
    assert sum(f > 0 for f in fractions) >= 20


def test_gae_with_lambda_one_is_the_discounted_return_minus_the_value() -> None:
    rewards = torch.tensor([[1.0], [0.0], [2.0], [1.0]])
    dones = torch.tensor([[False], [True], [False], [False]])
    values = torch.tensor([[0.5], [0.2], [0.1], [0.3]])
    last = torch.tensor([4.0])
    advantages, returns = trpo.advantages_and_returns(values, last, rewards, dones, gamma=0.9, lam=1.0)
    expected = torch.tensor([[1.0 + 0.9 * 0.0], [0.0], [2.0 + 0.9 * (1.0 + 0.9 * 4.0)], [1.0 + 0.9 * 4.0]])
    assert torch.allclose(returns, expected) and torch.allclose(advantages, expected - values)


CARTPOLE = {
    "game": "CartPole-v1",
    "n_envs": 8,
    "n_steps": 256,
    "critic_lr": 1e-3,
    "critic_epochs": 5,
    "critic_batch": 256,
    "snapshots": False,
}
"""CartPole settings: the recipe's policy step, a critic fitted harder (its MLP is cheap)"""


def greedy_scores(run_dir, games: int = 10) -> list[float]:
    model = trpo.build_model("CartPole-v1", (4,), 2)
    model.load_state_dict(load_file(str(run_dir / "weights.safetensors")))
    policy, env, scores = trpo.policy_of(model), gym.make("CartPole-v1"), []
    for game in range(games):
        obs, _ = env.reset(seed=game)
        done, score = False, 0.0
        while not done:
            with torch.no_grad():
                action = int(policy(torch.as_tensor(obs)[None]).argmax())
            obs, reward, terminated, truncated, _ = env.step(action)
            score, done = score + float(reward), terminated or truncated
        scores.append(score)
    return scores


@pytest.mark.slow
def test_cartpole_is_solved_within_150k_steps(tmp_path) -> None:
    """Budget: 150,000 steps (about 20 s). Solved: greedy play of the final policy averages at
    least 475 of the 500 possible over 10 games, and some 20 consecutive training games (actions
    sampled) average 475 too. Seeds 1 to 5 all passed when this was written; seed 1 is tested."""
    trpo.main(trpo.Args(run_dir=tmp_path, seed=1, total_timesteps=150_000, **CARTPOLE))
    with (tmp_path / "curve.csv").open(newline="") as f:
        scores = np.array([float(row["score"]) for row in csv.DictReader(f)])
    best_20 = max(scores[i : i + 20].mean() for i in range(len(scores) - 19))
    assert best_20 >= 475
    assert np.mean(greedy_scores(tmp_path)) >= 475


def test_recipe_keeps_every_step_within_the_kl_bound_and_learns_cartpole_a_little(tmp_path) -> None:
    trpo.main(trpo.Args(run_dir=tmp_path, seed=1, total_timesteps=20_480, max_kl=0.02, **CARTPOLE))
    with (tmp_path / "updates.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 and all(float(r["kl"]) <= 0.02 for r in rows)
    assert sum(float(r["fraction"]) > 0 for r in rows) >= 8
    with (tmp_path / "curve.csv").open(newline="") as f:
        scores = [float(row["score"]) for row in csv.DictReader(f)]
    assert np.mean(scores[-20:]) > 2 * np.mean(scores[:20])  # random play lasts about 22 steps


TINY_PONG = {"game": "pong", "n_envs": 2, "n_steps": 16, "fisher_states": 8, "critic_batch": 16}
X = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (3, *OBS_SHAPE)), dtype=torch.float32) / 255


def test_atari_run_loads_through_the_zoo_resumes_and_continues_a_victim(tmp_path, monkeypatch) -> None:
    run_dir = tmp_path / "run"
    trpo.main(trpo.Args(run_dir=run_dir, total_timesteps=64, checkpoint_every=32, **TINY_PONG))
    assert {p.name for p in (run_dir / "snapshots").iterdir()} == {
        "weights-32.safetensors",
        "weights-64.safetensors",
        "run-32.json",
        "run-64.json",
    }
    record = json.loads((run_dir / "run.json").read_text())
    assert record["algorithm"] == "trpo" and record["command"].startswith("python -m agents.trpo")
    assert record["network_kwargs"] == {"share_features_extractor": False}
    assert record["timesteps"] == 64 and record["frames"] == 4 * 64

    # The zoo builds SB3's CnnPolicy and gives the recipe's own logits.
    monkeypatch.setattr(rlattack.zoo, "ZOO", tmp_path / "zoo")
    bundle(run_dir, tmp_path / "zoo" / "pong-trpo")
    victim = load_victim("pong-trpo")
    model = trpo.build_model("pong", OBS_SHAPE, 6)
    state = load_file(str(run_dir / "checkpoint.safetensors"))
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
    with torch.no_grad():
        assert torch.allclose(victim(X), trpo.policy_of(model)(X), atol=1e-5)

    # A snapshot bundles the weights and record saved at its step, and the games played up to it.
    with (run_dir / "curve.csv").open("a", newline="") as f:
        csv.writer(f).writerows([[20, 80, -21.0, 20], [50, 200, -20.0, 30]])
    meta = bundle(run_dir, tmp_path / "snapshot", snapshot=32)
    assert meta["timesteps"] == 32 and meta["frames"] == 4 * 32
    bundled = load_file(str(tmp_path / "snapshot" / "weights.safetensors"))
    saved = load_file(str(run_dir / "snapshots" / "weights-32.safetensors"))
    assert bundled.keys() == saved.keys() and all(torch.equal(bundled[k], saved[k]) for k in saved)
    with (tmp_path / "snapshot" / "curve.csv").open(newline="") as f:
        assert [row["timesteps"] for row in csv.DictReader(f)] == ["20"]
    with pytest.raises(UserInputError, match=r"snapshots with records at \[32, 64\]"):
        bundle(run_dir, tmp_path / "nowhere", snapshot=48)

    # Re-running continues from the checkpoint: weights, the critic's Adam statistics, the steps.
    assert any(k.startswith("critic_adam.") and k.endswith(".exp_avg_sq") for k in state)
    env = trpo.make_envs("pong", 2, 0, False)
    trainer = trpo.Trainer(trpo.Args(**TINY_PONG), env, trpo.build_model("pong", OBS_SHAPE, 6), 0)
    trainer.load_checkpoint(run_dir / "checkpoint.safetensors")
    env.close()
    moments = trainer.critic_optimizer.state_dict()["state"]
    assert trainer.timesteps == 64 and len(moments) == 10  # every critic tensor
    assert torch.equal(moments[0]["exp_avg_sq"], state["critic_adam.0.exp_avg_sq"])
    trpo.main(trpo.Args(run_dir=run_dir, total_timesteps=96, checkpoint_every=32, **TINY_PONG))
    record = json.loads((run_dir / "run.json").read_text())
    assert record["timesteps"] == 96 and len(record["resumed_with"]) == 1
    with (run_dir / "updates.csv").open(newline="") as f:
        assert [int(r["timesteps"]) for r in csv.DictReader(f)] == [32, 64, 96]

    # --init-from continues a bundled victim: its weights (critic too), steps and record.
    again = tmp_path / "again"
    trpo.main(
        trpo.Args(run_dir=again, total_timesteps=64, init_from=tmp_path / "zoo" / "pong-trpo", **TINY_PONG)
    )
    assert json.loads((again / "run.json").read_text())["timesteps"] == 64  # the victim's, nothing to train
    continued = load_file(str(again / "weights.safetensors"))
    shipped = load_file(str(tmp_path / "zoo" / "pong-trpo" / "weights.safetensors"))
    assert continued.keys() == shipped.keys() and all(torch.equal(continued[k], shipped[k]) for k in shipped)


def test_ctrl_c_stops_and_saves_where_the_run_got_to(tmp_path) -> None:
    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        trpo.main(trpo.Args(run_dir=tmp_path, total_timesteps=10**8, checkpoint_every=10**8, **CARTPOLE))
    finally:
        timer.cancel()
    saved = int(load_file(str(tmp_path / "checkpoint.safetensors"))["timesteps"])
    assert 0 < saved < 10**8 and saved % (8 * 256) == 0  # whole rollouts only
    assert json.loads((tmp_path / "run.json").read_text())["timesteps"] == saved
