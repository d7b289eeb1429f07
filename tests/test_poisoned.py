"""Poisoned numbers are refused in one line, not reported as robustness: NaN or infinite weights,
outputs and gradients, and a network whose outputs are detached from its input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rlattack.attacks import FGSM, MAD, PGD
from rlattack.attacks.apgd import APGD
from rlattack.attacks.square import Square
from rlattack.errors import UserInputError
from rlattack.loading import load_policy
from rlattack.policies import Policy, check_finite_weights
from rlattack.robustness.checks import gradient_unusable
from tests.conftest import SMALL_SHAPE, small_batch, small_policy, tiny_net


def test_nan_or_infinite_weights_are_refused(tmp_path) -> None:
    for value in (math.nan, math.inf):
        net = tiny_net().double()
        with torch.no_grad():
            net[0].weight[0, 0, 0, 0] = value
        with pytest.raises(UserInputError, match=r"weights that are not finite \(NaN or inf\) in 0.weight"):
            check_finite_weights(Policy(net, 3, SMALL_SHAPE, input_scale=1.0))
    path = tmp_path / "nan.pt"
    net = nn.Sequential(nn.Flatten(), nn.Linear(4 * 84 * 84, 6))
    with torch.no_grad():
        net[1].bias[0] = math.nan
    torch.jit.script(net).save(str(path))
    with pytest.raises(UserInputError, match="not finite"):
        load_policy(f"torch:{path}")


class Poison(nn.Module):
    """The tiny net with NaN outputs, a NaN gradient (the same outputs), or detached outputs."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.net, self.kind = tiny_net().double(), kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "nan outputs":
            return self.net(x) * math.nan
        if self.kind == "nan gradient":  # sqrt(x - x + 0) has gradient inf * 0 = NaN
            return self.net(x + torch.sqrt(x - x))
        return self.net(x.detach())


def poisoned(kind: str) -> Policy:
    return Policy(Poison(kind), 3, SMALL_SHAPE, input_scale=1.0)


def test_nan_outputs_are_refused_wherever_they_are_read() -> None:
    with pytest.raises(UserInputError, match="outputs that are not finite"):
        poisoned("nan outputs")(small_batch(0))
    with pytest.raises(UserInputError, match="outputs that are not finite"):
        Square(0.1)(poisoned("nan outputs"), small_batch(0))


@pytest.mark.parametrize(
    "attack", [FGSM(0.1), PGD(0.1), MAD(0.1), APGD(0.1)], ids=["fgsm", "pgd", "mad", "apgd"]
)
@pytest.mark.parametrize("kind", ["nan gradient", "detached"])
def test_gradient_attacks_refuse_a_gradient_they_cannot_follow(attack, kind) -> None:
    policy, x = poisoned(kind), small_batch(1)
    assert torch.equal(policy(x), small_policy()(x))  # it plays as the tiny net does
    with pytest.raises(UserInputError, match=r"not finite|detached"):
        attack(policy, x)
    assert gradient_unusable(policy, x) is not None
    assert gradient_unusable(small_policy(), x) is None
    assert Square(0.3, queries=50)(policy, x).changed.any()  # the black-box attack still runs
