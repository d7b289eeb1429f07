"""DQN recipe (Mnih et al. 2015, Nature CNN) with Stable-Baselines3, resumable.

    python -m agents.dqn --game pong --seed 1 --run-dir runs/pong-dqn

Re-running the same command continues from `RUN_DIR/checkpoint.zip` (the replay buffer starts
empty again and refills for `learning_starts` steps before updates resume). Where only the
shipped victim is left (a new machine), `--init-from agents/zoo/pong-dqn` continues from its
weights and step count.
"""

from __future__ import annotations

from pathlib import Path

from stable_baselines3 import DQN

from agents.training import RunArgs, learn, run_record, start_or_resume
from rlattack.cli_options import run_command


class Args(RunArgs):
    run_dir: Path = Path("runs/pong-dqn")
    total_timesteps: int = 2_000_000
    buffer_size: int = 100_000
    """replay memory, in transitions (frames are stored once: ~2.8 GB at 100k)"""
    learning_rate: float = 1e-4
    """Adam step size"""
    batch_size: int = 32
    """transitions per gradient step"""
    learning_starts: int = 20_000
    """random-policy steps that fill the buffer before learning"""
    train_freq: int = 4
    """agent steps between gradient steps"""
    target_update_interval: int = 1_000
    """agent steps between copies of the online network into the target network"""
    exploration_steps: int = 250_000
    """steps over which epsilon decays linearly from 1 to `exploration_final_eps`"""
    exploration_final_eps: float = 0.01
    """epsilon after the decay"""
    gamma: float = 0.99
    """discount"""
    checkpoint_every: int = 25_000
    device: str = "auto"
    """torch device for training"""


def start(algorithm: type[DQN], args: Args) -> DQN:
    """The run's DQN (or a subclass: the robust recipes), new or resumed, with these settings."""
    model = start_or_resume(
        algorithm,
        args,
        n_envs=1,
        buffer_size=args.buffer_size,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        train_freq=args.train_freq,
        target_update_interval=args.target_update_interval,
        exploration_fraction=args.exploration_steps / args.total_timesteps,
        exploration_final_eps=args.exploration_final_eps,
        gamma=args.gamma,
        optimize_memory_usage=True,
        replay_buffer_kwargs={"handle_timeout_termination": False},
    )
    model.learning_starts = model.num_timesteps + args.learning_starts  # the replay buffer starts empty
    return model


def main(args: Args) -> None:
    learn(start(DQN, args), args, run_record(args.run_dir, args, "dqn"))


if __name__ == "__main__":
    run_command(main, Args)
