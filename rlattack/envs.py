"""The one place that builds Atari envs, with the classic `NoFrameskip-v4` preprocessing.

Frame skip 4 with max-pool over the last two frames, up to 30 no-op starts, no sticky actions
(an option of `make_vector_env` for measurements that need games to differ), minimal action
set, 84x84 grayscale, 4 stacked frames as uint8 `(4, 84, 84)`, FIRE on reset.
Evaluation envs return true game scores of whole games (no reward clipping, no life-loss
terminals, capped at 108,000 frames). Training envs clip rewards (and, where a recipe asks,
end the learner's episode at each lost life) in `Sb3VecEnv` only, so their episode statistics
are still true scores of whole games.
"""

from __future__ import annotations

import re
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
from ale_py.vector_env import AtariVectorEnv
from stable_baselines3.common.vec_env import VecEnv

from rlattack.errors import UserInputError

gym.register_envs(ale_py)

FRAME_SKIP = 4
NOOP_MAX = 30
STACK = 4
SIZE = 84
MAX_FRAMES = 108_000
OBS_SHAPE = (STACK, SIZE, SIZE)


def rom_id(game: str) -> str:
    """Normalise `Pong`, `pong`, `SpaceInvaders`, `space_invaders` or `ALE/Pong-v5` to a ROM id."""
    name = re.sub(r"^ALE/|(NoFrameskip)?-v\d+$", "", game.strip())
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    if snake not in ale_py.roms.get_all_rom_ids():
        raise UserInputError(f"unknown Atari game {game!r} (expected an ALE ROM such as 'pong')")
    return snake


def _gym_id(rom: str) -> str:
    return "ALE/" + "".join(part.capitalize() for part in rom.split("_")) + "-v5"


def make_vector_env(game: str, num_envs: int, *, num_threads: int = 0, sticky: float = 0.0) -> AtariVectorEnv:
    """Evaluation vector env: C++ threads, true scores, resets inside the step that ends a game.

    `final_obs` in the step's info holds the last observation of a finished game. `sticky` is the
    probability of repeating the previous action (Machado et al. 2018); the convention is none,
    and only measurements that need games to differ turn it on.
    """
    if not 0.0 <= sticky < 1.0:
        raise UserInputError(f"the sticky-action probability must be in [0, 1), got {sticky}")
    if num_envs < 1:
        raise UserInputError(f"need at least one env, got {num_envs}")
    return AtariVectorEnv(
        rom_id(game),
        num_envs,
        num_threads=num_threads,
        max_num_frames_per_episode=MAX_FRAMES,
        repeat_action_probability=sticky,
        full_action_space=False,
        frameskip=FRAME_SKIP,
        maxpool=True,
        noop_max=NOOP_MAX,
        img_height=SIZE,
        img_width=SIZE,
        stack_num=STACK,
        grayscale=True,
        episodic_life=False,
        reward_clipping=False,
        use_fire_reset=True,
        autoreset_mode="SameStep",
    )


class _FireReset(gym.Wrapper):
    """Press FIRE after reset, as ale-py's vector env does, so single and vector envs agree."""

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        if "FIRE" in self.env.unwrapped.get_action_meanings():
            obs, _, terminated, truncated, info = self.env.step(1)
            if terminated or truncated:
                obs, info = self.env.reset(**kwargs)
        return obs, info


def make_env(game: str, render_mode: str | None = None) -> gym.Env:
    """Single evaluation env with the same pipeline, built from gymnasium's own wrappers.

    Episode statistics are recorded innermost, so `info["episode"]` is the true game score.
    `render_mode="rgb_array"` lets `env.render()` return the screen the game shows (for videos).
    """
    env = gym.make(
        _gym_id(rom_id(game)),
        render_mode=render_mode,
        frameskip=1,
        repeat_action_probability=0.0,
        full_action_space=False,
        max_num_frames_per_episode=MAX_FRAMES,
    )
    env = gym.wrappers.RecordEpisodeStatistics(env)
    env = gym.wrappers.AtariPreprocessing(
        env, noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, screen_size=SIZE, grayscale_obs=True
    )
    env = _FireReset(env)
    return gym.wrappers.FrameStackObservation(env, STACK)


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
