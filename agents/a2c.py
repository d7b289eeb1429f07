"""A2C recipe (the synchronous variant of Mnih et al. 2016) with rl-zoo's Atari hyperparameters.

    python -m agents.a2c --game pong --seed 1 --run-dir runs/pong-a2c

The optimizer is TF-style RMSProp (epsilon inside the square root), as rl-zoo uses for Atari to
match the original implementation; see `agents.onpolicy` for the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from stable_baselines3 import A2C
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike

from agents.onpolicy import OnPolicyArgs, train
from rlattack.cli_options import run_command


class Args(OnPolicyArgs):
    run_dir: Path = Path("runs/pong-a2c")
    n_envs: int = 16
    """envs stepped together; a rollout is n_envs * n_steps transitions"""
    n_steps: int = 5
    """steps per env in each rollout: the n of the n-step returns"""
    learning_rate: float = 7e-4
    """RMSProp step size"""
    gae_lambda: float = 1.0
    """1.0: plain n-step returns, as in A3C"""
    ent_coef: float = 0.01
    """weight of the entropy bonus"""
    vf_coef: float = 0.25
    """weight of the value loss"""
    max_grad_norm: float = 0.5
    """gradient norm clip"""

    OPTIMIZER: ClassVar[dict[str, Any]] = {
        "optimizer_class": RMSpropTFLike,
        "optimizer_kwargs": {"eps": 1e-5},
    }


if __name__ == "__main__":
    run_command(lambda args: train(A2C, args), Args)
