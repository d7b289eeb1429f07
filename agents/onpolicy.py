"""On-policy Stable-Baselines3 recipes on Atari (A2C, PPO): one trainer, per-algorithm defaults.

    python -m agents.ppo --game pong --seed 1 --run-dir runs/pong-ppo
    python -m agents.a2c --game pong --seed 1 --run-dir runs/pong-a2c

Each algorithm's module holds only its `Args`: the defaults are its recipe. Every field that is
not about the run itself (`RUN_FIELDS`) is passed to the SB3 class under its own name, so a
field is a hyperparameter exactly as SB3 documents it. Resuming, `--init-from` and checkpoints
work as in the DQN recipe (`agents.training`); the rollout buffer simply refills.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import LinearSchedule

from agents.training import RunArgs, learn, run_record, start_or_resume

RUN_FIELDS = frozenset(RunArgs.model_fields) | {"n_envs", "linear_decay", "device"}
"""Fields about the run, kept from the SB3 class (seed and device reach it via `start_or_resume`)"""


class OnPolicyArgs(RunArgs):
    n_envs: int = 8
    """envs stepped together (ale-py's C++ threads); a rollout is n_envs * n_steps transitions"""
    n_steps: int = 128
    """steps per env in each rollout"""
    learning_rate: float = 2.5e-4
    """optimizer step size"""
    gamma: float = 0.99
    """discount"""
    gae_lambda: float = 0.95
    """GAE's lambda (1.0: plain n-step returns)"""
    linear_decay: tuple[str, ...] = ()
    """hyperparameters that decay linearly to 0 over total_timesteps (rl-zoo's `lin_` schedules)"""
    device: str = "auto"
    """torch device for training"""

    NETWORK: ClassVar[dict[str, Any]] = {}
    """CnnPolicy keywords that shape the network (the run record keeps them for the zoo)"""
    OPTIMIZER: ClassVar[dict[str, Any]] = {}
    """CnnPolicy keywords for the optimizer"""

    def hyperparameters(self) -> dict[str, Any]:
        """The SB3 constructor's keywords: every field not in RUN_FIELDS, with its schedule."""
        values = {name: getattr(self, name) for name in type(self).model_fields if name not in RUN_FIELDS}
        for name in self.linear_decay:
            values[name] = LinearSchedule(values[name], 0.0, 1.0)
        return values | {"policy_kwargs": self.NETWORK | self.OPTIMIZER}


def train(
    algorithm: type[OnPolicyAlgorithm], args: OnPolicyArgs, callbacks: Sequence[BaseCallback] = ()
) -> None:
    """Train (or continue) `algorithm` with `args`; the recipe module is `agents.<algorithm name>`."""
    model = start_or_resume(algorithm, args, args.n_envs, **args.hyperparameters())
    record = run_record(args.run_dir, args, algorithm.__name__.lower(), network_kwargs=args.NETWORK)
    learn(model, args, record, callbacks)
