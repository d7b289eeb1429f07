"""TRPO recipe (Schulman et al. 2015) with sb3-contrib; see `agents.onpolicy` for the trainer.

    python -m agents.trpo --game pong --seed 1 --run-dir runs/pong-trpo

rl-zoo has no Atari settings for TRPO, so these are chosen: PPO's rl-zoo rollout shape (8 envs)
with twice the steps, 2048 transitions per rollout, of which the constrained step uses a random
fifth (below); a KL bound of 0.01 (the step size of Schulman et al.'s Atari runs and
sb3-contrib's default); and a critic with its own
Nature CNN, as OpenAI Baselines' TRPO builds it (`value_network="copy"`): with a shared one,
sb3-contrib's critic could train only its last layer, since the features belong to the
KL-constrained actor. The critic takes 3 Adam passes over each rollout at PPO's Atari step size.

sb3-contrib's TRPO has no entropy term, and without one a policy can turn near deterministic and
stop exploring; `agents.entropy` measures a policy's entropy on the states of its own play.
`--entropy-bonus` (`EntropyBonus`) adds the entropy term that A3C and OpenAI Baselines' TRPO
(`entcoeff`) have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from sb3_contrib import TRPO
from stable_baselines3.common.callbacks import BaseCallback

from agents.onpolicy import OnPolicyArgs, train
from rlattack.cli_options import run_command


class Args(OnPolicyArgs):
    run_dir: Path = Path("runs/pong-trpo")
    n_steps: int = 256
    """steps per env in each rollout (8 envs: 2048 transitions per rollout)"""
    learning_rate: float = 2.5e-4
    """the critic's Adam step size (the policy step is set by target_kl)"""
    target_kl: float = 0.01
    """KL bound of each policy step, enforced by a backtracking line search"""
    n_critic_updates: int = 3
    """critic passes over each rollout (3, as in OpenAI Baselines' Atari TRPO)"""
    batch_size: int = 256
    """transitions per critic gradient step"""
    cg_max_steps: int = 10
    """conjugate-gradient iterations for the natural-gradient direction (Baselines: 10)"""
    sub_sampling_factor: int = 5
    """the policy step (its gradient, KL, conjugate gradient and line search) uses every 5th
    transition of the shuffled rollout; the critic learns from all of them. Each Fisher-vector
    product is a double backward pass through the CNN, and on the CPU they took most of a step:
    `benchmarks/training_speed.py` measures 4.1 times the steps per second"""
    cg_damping: float = 0.1
    """damping added to the Fisher-vector products"""

    entropy_bonus: float = 0.0
    """weight of the policy's entropy in the surrogate objective (0: sb3-contrib's TRPO; A3C's
    recipe uses 0.01 on the same raw advantages)"""

    NETWORK: ClassVar[dict[str, Any]] = {"share_features_extractor": False}

    def hyperparameters(self) -> dict[str, Any]:
        """SB3's keywords, less `entropy_bonus`, which `EntropyBonus` applies."""
        return {k: v for k, v in super().hyperparameters().items() if k != "entropy_bonus"}


class EntropyBonus(BaseCallback):
    """Adds `-coef * log pi_old(a|s)` to each rollout's advantages before TRPO normalizes them.

    At the rollout's policy the surrogate's gradient then gains `coef * grad H(pi(.|s))`, since
    `E_a[grad log pi(a|s) * -log pi(a|s)] = grad H`, and the line search weighs the same sum. Only
    the advantages change: the critic still learns the game's returns.
    """

    def __init__(self, coef: float) -> None:
        super().__init__()
        self.coef = coef

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        buffer.advantages -= self.coef * buffer.log_probs


def main(args: Args) -> None:
    train(TRPO, args, [EntropyBonus(args.entropy_bonus)] if args.entropy_bonus else [])


if __name__ == "__main__":
    run_command(main, Args)
