"""Attack wrappers on a fake stacked-frame env: what the agent sees, and what it keeps seeing."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlattack.attacks import FGSM
from rlattack.attacks.targets import least_likely
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from rlattack.schedules import EveryN, Timed
from rlattack.wrappers import AttackObservation, AttackVectorObservation
from tests.conftest import SMALL_SHAPE, tiny_net


class FakeStackEnv(gym.Env):
    """Emits a stack of 4 random 8x8 frames, shifted by one fresh frame per step; games last 5 steps."""

    observation_space = gym.spaces.Box(0, 255, SMALL_SHAPE, np.uint8)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        self.stack = self.np_random.integers(30, 220, SMALL_SHAPE, dtype=np.uint8)
        return self.stack.copy(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        frame = self.np_random.integers(30, 220, SMALL_SHAPE[1:], dtype=np.uint8)
        self.stack = np.concatenate([self.stack[1:], frame[None]])
        return self.stack.copy(), 1.0, self.t >= 5, False, {}


@pytest.fixture
def policy() -> Policy:
    return Policy(tiny_net(), n_actions=3, obs_shape=SMALL_SHAPE)


def test_stack_surface_perturbs_every_frame_from_the_clean_stack(policy) -> None:
    env = AttackObservation(FakeStackEnv(), policy, FGSM(3 / 255, quantize=True))
    seen, info = env.reset(seed=0)
    clean = env.unwrapped.stack
    assert seen.dtype == np.uint8 and info["attack"]["attacked"]
    diff = np.abs(seen.astype(int) - clean)
    assert diff.max() == 3 and (diff.reshape(4, -1).max(axis=1) == 3).all()
    assert info["attack"]["linf"] == pytest.approx(3 / 255, rel=1e-5)


def test_frame_surface_keeps_frames_as_they_were_seen(policy) -> None:
    env = AttackObservation(FakeStackEnv(), policy, FGSM(3 / 255, surface="frame", quantize=True))
    before, _ = env.reset(seed=0)
    after, _, _, _, info = env.step(0)
    clean = env.unwrapped.stack
    assert np.array_equal(after[:3], before[1:])  # older frames: as the agent saw them
    assert not np.array_equal(after[:3], clean[:3])  # ...which is not the clean history
    assert np.abs(after[3].astype(int) - clean[3]).max() == 3
    assert info["attack"]["l0"] <= 64


def test_schedule_decides_which_steps_are_attacked(policy) -> None:
    env = AttackObservation(FakeStackEnv(), policy, FGSM(3 / 255, quantize=True), EveryN(2))
    _, info = env.reset(seed=0)
    attacked = [info["attack"]["attacked"]]
    for _ in range(4):
        obs, *_, info = env.step(0)
        attacked.append(info["attack"]["attacked"])
        assert np.array_equal(obs, env.unwrapped.stack) == (not attacked[-1])
    assert attacked == [True, False, True, False, True]


def test_vector_wrapper_restarts_games_and_batches(policy) -> None:
    vec = gym.vector.SyncVectorEnv([FakeStackEnv, FakeStackEnv])
    env = AttackVectorObservation(vec, policy, FGSM(2 / 255, surface="frame", quantize=True), EveryN(5))
    obs, info = env.reset(seed=1)
    assert obs.shape == (2, *SMALL_SHAPE) and info["attack"]["attacked"].all()
    steps = []
    for _ in range(7):
        obs, *_, info = env.step(np.zeros(2, dtype=np.int64))
        steps.append(info["attack"]["attacked"].all())
    # games end at t=5 (attacked); with next-step autoreset the following step restarts at t=0
    assert steps == [False, False, False, False, True, True, False]


def test_wrappers_need_quantized_attacks_and_fitting_policies(policy) -> None:
    with pytest.raises(UserInputError, match="quantize=True"):
        AttackObservation(FakeStackEnv(), policy, FGSM(0.01))
    four_actions = Policy(tiny_net(n_actions=4), n_actions=4, obs_shape=SMALL_SHAPE)
    with pytest.raises(UserInputError, match="action-space mismatch"):
        AttackObservation(FakeStackEnv(), four_actions, FGSM(0.01, quantize=True))


def test_timed_schedule_attacks_exactly_the_steps_above_beta(policy) -> None:
    plain = FakeStackEnv()  # its frames do not depend on the actions: replay them clean first
    clean = [plain.reset(seed=3)[0]] + [plain.step(0)[0] for _ in range(5)]
    with torch.no_grad():
        pi = torch.softmax(policy(torch.as_tensor(np.stack(clean)).float() / 255), dim=1)
    preference = (pi.max(1).values - pi.min(1).values).numpy()
    beta = float(np.median(preference))
    attack = FGSM(2 / 255, quantize=True, target=least_likely)
    env = AttackObservation(FakeStackEnv(), policy, attack, Timed(beta))
    flags = [env.reset(seed=3)[1]["attack"]["attacked"]]
    flags += [env.step(0)[-1]["attack"]["attacked"] for _ in range(5)]
    assert flags == (preference >= beta).tolist() and 0 < sum(flags) < len(flags)
