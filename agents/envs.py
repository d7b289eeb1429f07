"""Training envs: ale-py's vector env seen through Stable-Baselines3's `VecEnv` API.

Only the recipes need SB3's env API, reward clipping and life-loss episodes, so this lives with
them; evaluation builds its envs in `rlattack.envs`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from rlattack.envs import make_vector_env


class Sb3VecEnv(VecEnv):
    """ale-py's vector env seen through Stable-Baselines3's `VecEnv` API, for training.

    Rewards are clipped to their sign here (training only); `info["episode"]` carries the true
    score and length of each finished game, which is what SB3's logger and callbacks read.
    `life_loss=True` reports a lost life as the end of an episode, as Mnih et al. 2015 trained:
    dying then costs the value of what the life would have scored. The game itself goes on (the
    next observation continues it), and only a finished game is counted in `info["episode"]`.
    """

    def __init__(
        self, game: str, num_envs: int, seed: int, clip_rewards: bool = True, life_loss: bool = False
    ) -> None:
        self.env = make_vector_env(game, num_envs)
        self.clip_rewards = clip_rewards
        self.life_loss = life_loss
        self._lives = np.zeros(num_envs, dtype=np.int64)
        self._seed = seed
        self._returns = np.zeros(num_envs)
        self._lengths = np.zeros(num_envs, dtype=np.int64)
        self._actions = np.zeros(num_envs, dtype=np.int64)
        self.render_mode = None
        super().__init__(num_envs, self.env.single_observation_space, self.env.single_action_space)

    def reset(self) -> np.ndarray:
        obs, info = self.env.reset(seed=self._seed)
        self._seed += self.num_envs
        self._lives = info["lives"].copy()
        self._returns[:] = 0
        self._lengths[:] = 0
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
        obs, reward, terminated, truncated, info = self.env.step(self._actions)
        reward = reward.astype(np.float64)
        self._returns += reward
        self._lengths += 1
        done = terminated | truncated
        infos: list[dict] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(done):
            infos[i] = {
                "terminal_observation": info["final_obs"][i],
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                "episode": {"r": float(self._returns[i]), "l": int(self._lengths[i])},
            }
            self._returns[i] = 0
            self._lengths[i] = 0
        if self.life_loss:  # after a finished game `lives` is the new game's: never a loss
            lost = (info["lives"] < self._lives) & ~done
            for i in np.flatnonzero(lost):
                infos[i] = {"terminal_observation": obs[i], "TimeLimit.truncated": False}
            done = done | lost
        self._lives = info["lives"].copy()
        if self.clip_rewards:
            reward = np.sign(reward)
        return obs, reward.astype(np.float32), done, infos

    def close(self) -> None:
        self.env.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list:
        raise NotImplementedError(f"{method_name}: sub-envs live in C++ threads")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)
