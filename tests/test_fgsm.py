"""FGSM and the noise baseline: the textbook example, exact budgets, clipping, batching."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rlattack.attacks import FGSM, Noise
from rlattack.attacks.targets import FixedAction, PolicyAction, RandomOther, least_likely, parse_target
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from tests.conftest import SMALL_SHAPE, Logistic, tiny_net

W = torch.tensor([-5, 3, -2, 2, -2, -5, -4, 3, 4, -4], dtype=torch.float64)
X = torch.tensor([[-1, -1, 1, -1, 1, 1, -1, 1, -1, -1]], dtype=torch.float64)


def test_logistic_textbook_example() -> None:
    """sigmoid(w.x) = 0.12; an L-inf step of 0.1 against it gives 0.80 (unclipped)."""
    policy = Policy(Logistic(W), n_actions=2, obs_shape=(10,), input_scale=1.0)
    assert torch.sigmoid(X @ W).item() == pytest.approx(0.12, abs=0.005)
    result = FGSM(0.1, "inf", bounds=None)(policy, X)
    assert torch.sigmoid(result.adv @ W).item() == pytest.approx(0.80, abs=0.005)
    assert result.clean_action.item() == 0 and result.adv_action.item() == 1
    assert torch.allclose(result.adv - X, 0.1 * torch.sign(W))


def _x(seed: int, n: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 0.25 + 0.5 * torch.rand(n, *SMALL_SHAPE, generator=g, dtype=torch.float64)


def _budget(norm: str, eps: float, d: int) -> float:
    return {"inf": eps, "2": eps * math.sqrt(d), "1": eps * d}[norm]


def _measure(delta: torch.Tensor, norm: str) -> torch.Tensor:
    flat = delta.flatten(1)
    return {"inf": flat.abs().amax(1), "2": flat.norm(dim=1), "1": flat.abs().sum(1)}[norm]


attack_cases = st.sampled_from([FGSM, Noise])
norms = st.sampled_from(["inf", "2", "1"])
surfaces = st.sampled_from(["stack", "frame"])


@settings(max_examples=40, deadline=None)
@given(attack=attack_cases, norm=norms, surface=surfaces, eps=st.floats(0.001, 0.2), seed=st.integers(0, 99))
def test_budget_met_exactly_before_clipping(attack, norm, surface, eps, seed) -> None:
    policy = Policy(tiny_net().double(), 3, SMALL_SHAPE, input_scale=1.0)
    x = _x(seed)
    result = attack(eps, norm, surface, bounds=None)(policy, x)
    d = math.prod(SMALL_SHAPE) if surface == "stack" else SMALL_SHAPE[1] * SMALL_SHAPE[2]
    # the L1 spend keeps each feature inside [0, 1]; x in [0.25, 0.75] leaves room for eps * d <= 0.2 d
    assert torch.allclose(
        _measure(result.adv - x, norm), torch.full((3,), _budget(norm, eps, d), dtype=x.dtype), rtol=1e-9
    )
    if surface == "frame":
        assert torch.equal(result.adv[:, :-1], x[:, :-1])


@settings(max_examples=40, deadline=None)
@given(attack=attack_cases, norm=norms, surface=surfaces, eps=st.floats(0.0, 1.0), seed=st.integers(0, 99))
def test_outputs_stay_in_unit_range_and_within_budget(attack, norm, surface, eps, seed) -> None:
    policy = Policy(tiny_net().double(), 3, SMALL_SHAPE, input_scale=1.0)
    x = torch.rand(3, *SMALL_SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    result = attack(eps, norm, surface)(policy, x)
    d = math.prod(SMALL_SHAPE) if surface == "stack" else SMALL_SHAPE[1] * SMALL_SHAPE[2]
    assert result.adv.min() >= 0 and result.adv.max() <= 1
    assert (_measure(result.adv - x, norm) <= _budget(norm, eps, d) * (1 + 1e-9) + 1e-12).all()
    assert torch.allclose(result.linf, (result.adv - x).flatten(1).abs().amax(1))


@pytest.mark.parametrize("norm", ["inf", "2", "1"])
def test_quantized_outputs_are_uint8_frames_and_norms_are_effective(tiny_policy, norm) -> None:
    x = torch.randint(0, 256, (4, *SMALL_SHAPE), dtype=torch.float64) / 255
    result = FGSM(1.4 / 255, norm, quantize=True)(tiny_policy, x)
    levels = result.adv * 255
    assert torch.allclose(levels, levels.round(), atol=1e-9)
    change = (result.adv - x).flatten(1)
    assert torch.allclose(result.l2, change.norm(dim=1))
    assert torch.equal(result.l0, (change != 0).sum(1).double())
    if norm == "inf":  # 1.4 gray levels round to exactly one
        assert torch.allclose(result.linf[result.l0 > 0], torch.tensor(1 / 255, dtype=torch.float64))


def test_tiny_eps_rounds_away_and_the_norms_say_so(tiny_policy) -> None:
    x = torch.randint(0, 256, (2, *SMALL_SHAPE), dtype=torch.float64) / 255
    result = FGSM(0.4 / 255, quantize=True)(tiny_policy, x)
    assert torch.equal(result.adv, x)
    assert result.l0.sum() == 0 and result.linf.sum() == 0


@pytest.mark.parametrize("norm", ["inf", "2", "1"])
@pytest.mark.parametrize("surface", ["stack", "frame"])
def test_batch_equals_samples_one_by_one(tiny_policy, norm, surface) -> None:
    x = _x(7, n=5)
    attack = FGSM(0.05, norm, surface)
    batch = attack(tiny_policy, x)
    for i in range(len(x)):
        alone = attack(tiny_policy, x[i : i + 1])
        assert torch.allclose(batch.adv[i], alone.adv[0], atol=1e-12)
        assert batch.adv_action[i] == alone.adv_action[0]


def test_targeted_raises_the_target_probability(tiny_policy) -> None:
    x = _x(3, n=8)
    probs = torch.softmax(tiny_policy(x), dim=1)
    target = probs.argmin(dim=1)
    result = FGSM(0.02, targeted=True)(tiny_policy, x, target)
    after = torch.softmax(tiny_policy(result.adv), dim=1)
    rows = torch.arange(len(x))
    assert (after[rows, target] > probs[rows, target]).all()


def test_untargeted_lowers_the_clean_action_probability(tiny_policy) -> None:
    x = _x(4, n=8)
    probs = torch.softmax(tiny_policy(x), dim=1)
    clean = probs.argmax(dim=1)
    result = FGSM(0.02)(tiny_policy, x)
    rows = torch.arange(len(x))
    assert torch.equal(result.clean_action, clean)
    assert (torch.softmax(tiny_policy(result.adv), dim=1)[rows, clean] < probs[rows, clean]).all()


def test_no_gradient_lands_on_the_weights(tiny_policy) -> None:
    for p in tiny_policy.parameters():  # weights that want gradients: only autograd.grad spares them
        p.requires_grad_(True)
    FGSM(0.05)(tiny_policy, _x(1))
    assert all(p.grad is None for p in tiny_policy.parameters())


@pytest.mark.parametrize("eps", [-0.1, float("nan"), float("inf")])
def test_bad_eps_is_refused(eps) -> None:
    with pytest.raises(UserInputError, match="eps"):
        FGSM(eps)


def test_bad_inputs_are_refused(tiny_policy) -> None:
    with pytest.raises(UserInputError, match="norm"):
        FGSM(0.1, norm="3")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="surface"):
        FGSM(0.1, surface="pixel")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="do not fit"):
        FGSM(0.1)(tiny_policy, torch.rand(2, 3, 8, 8, dtype=torch.float64))
    with pytest.raises(UserInputError, match="float"):
        FGSM(0.1)(tiny_policy, torch.zeros(2, *SMALL_SHAPE, dtype=torch.uint8))
    with pytest.raises(UserInputError, match="target"):
        FGSM(0.1, targeted=True)(tiny_policy, _x(0, 2), torch.tensor([0, 3]))


def test_target_rules(tiny_policy) -> None:
    x = _x(5, n=6)
    logits = tiny_policy(x)
    assert torch.equal(least_likely(x, logits), logits.argmin(1))
    assert (FixedAction(1)(x, logits) == 1).all()
    assert (RandomOther(0)(x, logits) != logits.argmax(1)).all()
    adversary = Policy(tiny_net(seed=7).double(), n_actions=3, obs_shape=SMALL_SHAPE, input_scale=1.0)
    assert torch.equal(PolicyAction(adversary)(x, logits), adversary(x).argmax(1))
    with pytest.raises(UserInputError, match="adversary"):
        PolicyAction(adversary)(x, torch.zeros(len(x), 4))
    result = FGSM(0.01, target=least_likely)(tiny_policy, x)
    assert torch.equal(result.target, logits.argmin(1))
    with pytest.raises(UserInputError, match="bad target"):
        parse_target("most-likely")
    with pytest.raises(UserInputError, match="untargeted"):
        FGSM(0.01)(tiny_policy, x, logits.argmin(1))
    with pytest.raises(UserInputError, match="needs target actions"):
        FGSM(0.01, targeted=True)(tiny_policy, x)
