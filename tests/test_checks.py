"""The checks of a robustness verdict: each kind of gradient masking makes its check fire, the
set's gradient-free, transfer, DLR or EOT attack still reaches what a transfer from the unmasked
twin reaches, and an undefended zoo victim raises no false alarm."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rlattack import zoo
from rlattack.attacks import PGD
from rlattack.attacks.apgd import APGD
from rlattack.attacks.spec import AttackSpec
from rlattack.attacks.square import Square
from rlattack.attacks.transfer import Transfer
from rlattack.envs import make_vector_env
from rlattack.expectation import Expectation, is_randomized
from rlattack.policies import Policy
from rlattack.robustness import checks
from tests.conftest import SMALL_SHAPE, small_batch, small_policy


class Rounded(nn.Module):
    """Shattered: a rounding to gray levels in front (the same outputs on frames, zero gradient)."""

    def __init__(self, net: nn.Module, scale: float = 1.0) -> None:
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.round(x * 255 / self.scale) / 255 * self.scale)


class Noisy(nn.Module):
    """Stochastic: fresh Gaussian noise on the input at every call."""

    def __init__(self, net: nn.Module, sigma: float) -> None:
        super().__init__()
        self.net, self.sigma = net, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x + self.sigma * torch.randn_like(x))


class Saturated(nn.Module):
    """Vanishing: outputs scaled until float32's softmax is one-hot (cross-entropy gradient 0)."""

    def __init__(self, net: nn.Module, scale: float = 1e6) -> None:
        super().__init__()
        self.net, self.scale = net, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.scale


def masked(policy: Policy, wrapper: nn.Module) -> Policy:
    return Policy(wrapper, policy.n_actions, policy.obs_shape, input_scale=policy.input_scale)


def changed(result) -> float:
    return float(result.changed.float().mean())


def tiny() -> tuple[Policy, torch.Tensor]:
    plain = small_policy()
    return Policy(plain.net.float(), 3, SMALL_SHAPE, input_scale=1.0), small_batch(8, n=48).float()


def test_shattered_gradients_fire_the_gradient_check_and_square_still_gets_through() -> None:
    plain, x = tiny()
    x = torch.round(x * 255) / 255
    hidden = masked(plain, Rounded(plain.net))
    assert checks.gradient_check(plain, x).passed
    fired = checks.gradient_check(hidden, x)
    assert not fired.passed and "cross-entropy 100%, margin 100%" in fired.detail
    twin = changed(Transfer(PGD(0.1), plain)(hidden, x))
    assert twin > 0.5 and changed(Square(0.1, queries=500)(hidden, x)) >= twin - 0.1


def test_vanishing_gradients_fire_the_gradient_check_and_dlr_still_gets_through() -> None:
    plain, x = tiny()
    hidden = masked(plain, Saturated(plain.net))
    fired = checks.gradient_check(hidden, x)
    assert not fired.passed and "cross-entropy 100%" in fired.detail
    assert changed(APGD(0.05, loss="ce", random_start=False)(hidden, x)) == 0
    twin = changed(Transfer(APGD(0.05), plain)(hidden, x))
    assert twin > 0.5 and changed(APGD(0.05, loss="dlr")(hidden, x)) >= twin - 0.05


def test_random_outputs_fire_the_randomness_check_until_eot_averages_them() -> None:
    plain, x = tiny()
    noisy = masked(plain, Noisy(plain.net, sigma=0.3))
    assert is_randomized(noisy, x) and not is_randomized(plain, x)
    assert not checks.randomness_check(noisy, x, eot=1).passed
    assert checks.randomness_check(noisy, x, eot=16).passed
    mean = Expectation(noisy, 256)  # what the attacked policy does on average
    torch.manual_seed(0)
    one = PGD(0.1, steps=10)
    eot = PGD(0.1, steps=10)
    eot.eot = 32

    def on_average(attack) -> float:
        adv = attack(noisy, x).adv
        with torch.no_grad():
            return float((mean(adv).argmax(1) != mean(x).argmax(1)).float().mean())

    twin = on_average(Transfer(PGD(0.1, steps=10), plain))
    assert twin > 0.5 and on_average(eot) >= twin - 0.1 and on_average(eot) > on_average(one)


def test_probabilities_fire_the_logits_check() -> None:
    plain, x = tiny()
    assert checks.probability_check(plain, x).passed
    softmax = masked(plain, nn.Sequential(plain.net, nn.Softmax(dim=1)))
    assert not checks.probability_check(softmax, x).passed


def test_black_box_beating_white_box_beyond_its_interval_fails() -> None:
    def row(square: float, std: float) -> dict:
        attacks = {"apgd-ce": {"return_mean": 10.0, "return_std": 1.0, "episodes": 5}}
        attacks["square"] = {"return_mean": square, "return_std": std, "episodes": 5}
        return {"eps": 1 / 255, "attacks": attacks}

    white, black = ("apgd-ce",), ("square",)
    assert not checks.black_box_check([row(-20.0, 1.0)], white, black).passed
    assert checks.black_box_check([row(9.0, 2.0)], white, black).passed  # within its 95% interval
    assert checks.black_box_check([row(9.0, 0.0)], white, black).passed  # within the white-box one's
    alone = {"eps": 1 / 255, "attacks": {"square": {"return_mean": -20.0, "return_std": 0.0, "episodes": 5}}}
    assert "not applicable" in checks.black_box_check([alone], white, black).detail


def test_a_large_eps_must_reach_near_random_play() -> None:
    assert checks.large_eps_check(32 / 255, -20.0, clean=20.0, random=-20.7).passed
    assert not checks.large_eps_check(32 / 255, 19.0, clean=20.0, random=-20.7).passed


def test_attacks_with_too_few_steps_fail_the_convergence_check() -> None:
    plain, x = tiny()
    weak = {"pgd": AttackSpec.parse(name="pgd", eps=0.1, steps=1, step_size=0.002)}
    assert not checks.convergence_check(plain, x, 0.03, weak, seed=0).passed
    strong = {"apgd-ce": AttackSpec.parse(name="apgd", eps=0.1, steps=20)}
    assert checks.convergence_check(plain, x, 0.03, strong, seed=0).passed


@pytest.fixture(scope="module")
def pong_states() -> torch.Tensor:
    """32 states of Pong from random play (every 4th of 128 steps)."""
    env = make_vector_env("pong", 1)
    obs, _ = env.reset(seed=0)
    rng, states = np.random.default_rng(0), []
    for step in range(128):
        if step % 4 == 0:
            states.append(obs[0])
        obs, *_ = env.step(rng.integers(0, 6, size=1))
    env.close()
    return torch.as_tensor(np.stack(states)).float() / 255


def test_no_false_alarm_on_an_undefended_zoo_victim(pong_states) -> None:
    policy = zoo.load_victim("pong-dqn")
    specs = {"apgd-ce": AttackSpec.parse(name="apgd", eps=1 / 255)}
    for check in (
        checks.gradient_check(policy, pong_states),
        checks.randomness_check(policy, pong_states, eot=1),
        checks.probability_check(policy, pong_states),
        checks.convergence_check(policy, pong_states[:8], 1 / 255, specs, seed=0),
    ):
        assert check.passed, check.detail


def test_a_shattered_pong_policy_fires_its_check_and_square_matches_the_twins_transfer(pong_states) -> None:
    plain = zoo.load_victim("pong-dqn")
    hidden = masked(plain, Rounded(plain.net, scale=plain.input_scale))
    x = torch.round(pong_states * 255) / 255
    assert not checks.gradient_check(hidden, x).passed
    assert changed(PGD(1 / 255)(hidden, x)) < 0.2  # only where the random start alone changes it
    twin = changed(Transfer(PGD(1 / 255), plain)(hidden, x))
    assert twin > 0.8 and changed(Square(1 / 255, queries=100)(hidden, x)) >= twin - 0.1
