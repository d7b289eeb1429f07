"""PPO recipe (Schulman et al. 2017) with rl-zoo's Atari hyperparameters; see `agents.onpolicy`.

python -m agents.ppo --game pong --seed 1 --run-dir runs/pong-ppo
"""

from __future__ import annotations

from pathlib import Path

from stable_baselines3 import PPO

from agents.onpolicy import OnPolicyArgs, train
from rlattack.cli_options import run_command


class Args(OnPolicyArgs):
    run_dir: Path = Path("runs/pong-ppo")
    n_epochs: int = 4
    """passes over each rollout"""
    batch_size: int = 256
    """transitions per gradient step"""
    clip_range: float = 0.1
    """how far the probability ratio may move from 1 in one update"""
    ent_coef: float = 0.01
    """weight of the entropy bonus"""
    vf_coef: float = 0.5
    """weight of the value loss"""
    linear_decay: tuple[str, ...] = ("learning_rate", "clip_range")
    """hyperparameters that decay linearly to 0 over total_timesteps (rl-zoo's `lin_` schedules)"""


if __name__ == "__main__":
    run_command(lambda args: train(PPO, args), Args)
