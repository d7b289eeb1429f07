"""Env construction: names, the classic pipeline's shapes, true scores for training logs."""

from __future__ import annotations

import numpy as np
import pytest

from agents.envs import Sb3VecEnv
from rlattack.envs import make_env, make_vector_env, rom_id
from rlattack.errors import UserInputError
from rlattack.observations import OBS_SHAPE


@pytest.mark.parametrize("name", ["pong", "Pong", "ALE/Pong-v5", "PongNoFrameskip-v4"])
def test_game_names_resolve(name) -> None:
    assert rom_id(name) == "pong"


def test_camel_case_games_resolve() -> None:
    assert rom_id("SpaceInvaders") == "space_invaders"
    assert rom_id("ChopperCommand") == "chopper_command"


def test_unknown_game_is_refused() -> None:
    with pytest.raises(UserInputError, match="unknown Atari game 'Pongg'"):
        rom_id("Pongg")


def test_single_and_vector_envs_give_stacked_uint8_frames() -> None:
    env = make_env("pong")
    obs, _ = env.reset(seed=0)
    assert obs.shape == OBS_SHAPE and obs.dtype == np.uint8 and env.action_space.n == 6
    vec = make_vector_env("pong", 3)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3, *OBS_SHAPE) and obs.dtype == np.uint8
    obs, *_ = vec.step(np.zeros(3, dtype=np.int64))
    before = obs
    obs, *_ = vec.step(np.zeros(3, dtype=np.int64))
    assert np.array_equal(obs[:, :3], before[:, 1:])  # oldest frame first, newest last
    vec.close()


def test_training_env_clips_rewards_but_logs_true_scores() -> None:
    env = Sb3VecEnv("pong", num_envs=2, seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    clipped_sum = np.zeros(2)
    while True:
        _, reward, done, infos = env.step(rng.integers(0, 6, 2))
        assert set(np.unique(reward)) <= {-1.0, 0.0, 1.0}
        clipped_sum += reward
        if done.any():
            i = int(np.flatnonzero(done)[0])
            assert infos[i]["episode"]["r"] == clipped_sum[i]  # Pong scores are +-1 per point
            assert infos[i]["episode"]["r"] <= -15 and infos[i]["terminal_observation"].shape == OBS_SHAPE
            break
    env.close()


def test_life_loss_ends_the_learners_episode_but_not_the_game() -> None:
    """Chopper Command has 3 lives: a random game ends the learner's episode 3 times, counts once."""
    env = Sb3VecEnv("chopper_command", num_envs=1, seed=0, life_loss=True)
    obs = env.reset()
    rng = np.random.default_rng(0)
    ends, returns = 0, 0.0
    while True:
        previous = obs
        obs, reward, done, infos = env.step(rng.integers(0, 18, 1))
        returns += reward[0]
        if not done[0]:
            continue
        ends += 1
        if "episode" in infos[0]:
            break
        assert np.array_equal(infos[0]["terminal_observation"], obs[0])  # the game goes on
        assert np.array_equal(obs[0, :3], previous[0, 1:])
    assert ends == 3 and infos[0]["episode"]["r"] >= returns > 0  # a whole game's true score
    env.close()
