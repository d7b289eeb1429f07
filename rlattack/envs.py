"""The one place that builds Atari envs, with the classic `NoFrameskip-v4` preprocessing.

Frame skip 4 with max-pool over the last two frames, up to 30 no-op starts, no sticky actions
(an option of `make_vector_env` for measurements that need games to differ), minimal action
set, 84x84 grayscale, 4 stacked frames as uint8 `(4, 84, 84)`, FIRE on reset.
Evaluation envs return true game scores of whole games (no reward clipping, no life-loss
terminals, capped at 108,000 frames); the training recipes clip rewards in their own
`agents.envs.Sb3VecEnv`.
"""

from __future__ import annotations

import re
from typing import Any

import ale_py
import gymnasium as gym
import numpy as np
from ale_py.vector_env import AtariVectorEnv

from rlattack.errors import UserInputError
from rlattack.observations import FRAME_SKIP, MAX_FRAMES, NOOP_MAX, SIZE, STACK

gym.register_envs(ale_py)


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
