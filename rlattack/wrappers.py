"""gymnasium wrappers that show the agent attacked observations instead of the env's own.

Use them to put any agent (an SB3 model's `predict`, your own loop) under attack. The agent
downstream receives uint8 frames as the env gave them, so attacks must round to gray levels
(`quantize=True`) and the norms reported in `info["attack"]` are those of the uint8 frames.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper

from rlattack.attacks.base import Attack
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from rlattack.rollout.attacker import Attacker, Step
from rlattack.schedules import Schedule


def _check_quantized(attack: Attack | None) -> None:
    if attack is not None and not attack.quantize:
        raise UserInputError("wrappers hand uint8 frames to the agent: build the attack with quantize=True")


def _as_frames(step: Step) -> np.ndarray:
    return (step.seen * 255).round().to("cpu").numpy().astype(np.uint8)


def _info(step: Step) -> dict[str, np.ndarray]:
    return {
        "attacked": step.attacked,
        "clean_action": step.clean_action,
        "adv_action": step.action,
        "target": step.target,
        "linf": step.linf,
        "l2": step.l2,
        "l0": step.l0,
    }


class AttackObservation(gym.Wrapper):
    """Single env: every observation passes through `attack` when `schedule` says so.

    `info["attack"]` holds, for the returned observation: whether it was attacked, the policy's
    clean and adversarial greedy actions, and the effective L-inf / L2 / L0 norms.
    """

    def __init__(
        self, env: gym.Env, policy: Policy, attack: Attack | None, schedule: Schedule | None = None
    ) -> None:
        super().__init__(env)
        _check_quantized(attack)
        policy.check_fits(int(env.action_space.n), env.observation_space.shape, str(env.spec and env.spec.id))
        self.attacker = Attacker(policy, attack, schedule, num_envs=1)
        self.t = 0

    def _see(self, obs: np.ndarray, info: dict[str, Any], new_game: bool) -> tuple[np.ndarray, dict]:
        step = self.attacker.observe(
            np.asarray(obs)[None], np.array([new_game]), np.array([self.t]), np.array([0])
        )
        info["attack"] = {k: v[0] for k, v in _info(step).items()}
        return _as_frames(step)[0], info

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        self.t = 0
        return self._see(obs, info, new_game=True)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        obs, info = self._see(obs, info, new_game=False)
        return obs, reward, terminated, truncated, info


class AttackVectorObservation(VectorWrapper):
    """Vector env: one batched attack call per step over all sub-envs.

    Works with same-step and next-step autoreset; `info["attack"]` holds one entry per sub-env.
    """

    def __init__(
        self, env: VectorEnv, policy: Policy, attack: Attack | None, schedule: Schedule | None = None
    ) -> None:
        super().__init__(env)
        _check_quantized(attack)
        policy.check_fits(int(env.single_action_space.n), env.single_observation_space.shape, "env")
        self.attacker = Attacker(policy, attack, schedule, num_envs=env.num_envs)
        self.same_step = env.metadata.get("autoreset_mode") == AutoresetMode.SAME_STEP
        self.t = np.zeros(env.num_envs, dtype=np.int64)
        self.ended = np.zeros(env.num_envs, dtype=bool)
        self.everyone = np.arange(env.num_envs)

    def _see(self, obs: np.ndarray, info: dict, new_game: np.ndarray) -> tuple[np.ndarray, dict]:
        step = self.attacker.observe(obs, new_game, self.t, self.everyone)
        info["attack"] = _info(step)
        return _as_frames(step), info

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        self.t[:] = 0
        self.ended[:] = False
        return self._see(obs, info, np.ones(self.num_envs, dtype=bool))

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, reward, terminated, truncated, info = self.env.step(actions)
        done = terminated | truncated
        new_game = done if self.same_step else self.ended
        self.t = np.where(new_game, 0, self.t + 1)
        self.ended = done
        obs, info = self._see(obs, info, new_game)
        return obs, reward, terminated, truncated, info
