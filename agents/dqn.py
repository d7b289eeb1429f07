"""DQN recipe (Mnih et al. 2015, Nature CNN) with Stable-Baselines3, resumable.

    python -m agents.dqn --game pong --seed 1 --run-dir runs/pong-dqn

Re-running the same command continues from `RUN_DIR/checkpoint.zip` (the replay buffer starts
empty again and refills for `learning_starts` steps before updates resume). Where only the
shipped victim is left (a new machine), `--init-from agents/zoo/pong-dqn` continues from its
weights and step count.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import tyro
from stable_baselines3 import DQN

from agents.training import Checkpoint, continue_from_victim, run_record
from rlattack.envs import Sb3VecEnv


@dataclass
class Args:
    game: str = "pong"
    """ALE game, e.g. pong, seaquest, space_invaders, chopper_command"""
    seed: int = 1
    """seed of the envs, the network's initialisation and exploration"""
    run_dir: Path = Path("runs/pong-dqn")
    """where checkpoints, weights, the learning curve and the run record go"""
    total_timesteps: int = 2_000_000
    """agent steps (each is 4 emulator frames)"""
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
    """agent steps between checkpoints"""
    threads: int = 1
    """torch CPU threads (leave a core for the emulator on small machines)"""
    device: str = "auto"
    """torch device for training"""
    init_from: Path | None = None
    """zoo victim folder to continue when RUN_DIR has no checkpoint: its weights, steps and record
    (Adam's moments and the replay buffer start afresh)"""


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    env = Sb3VecEnv(args.game, num_envs=1, seed=args.seed)
    checkpoint = args.run_dir / "checkpoint.zip"
    if checkpoint.exists():
        model = DQN.load(checkpoint, env=env, device=args.device)
        model.learning_starts = model.num_timesteps + args.learning_starts  # refill the buffer
    else:
        model = DQN(
            "CnnPolicy",
            env,
            buffer_size=args.buffer_size,
            learning_rate=args.learning_rate,
            batch_size=args.batch_size,
            learning_starts=args.learning_starts,
            train_freq=args.train_freq,
            target_update_interval=args.target_update_interval,
            exploration_fraction=args.exploration_steps / args.total_timesteps,
            exploration_final_eps=args.exploration_final_eps,
            gamma=args.gamma,
            optimize_memory_usage=True,
            replay_buffer_kwargs={"handle_timeout_termination": False},
            seed=args.seed,
            device=args.device,
            verbose=0,
        )
        if args.init_from is not None:
            continue_from_victim(model, args.init_from, args.run_dir)
    record = run_record(args.run_dir, args, "dqn")
    remaining = args.total_timesteps - model.num_timesteps
    if remaining > 0:
        model.learn(
            remaining,
            callback=Checkpoint(args.run_dir, args.checkpoint_every, record),
            reset_num_timesteps=False,
            progress_bar=False,
        )


if __name__ == "__main__":
    main(tyro.cli(Args))
