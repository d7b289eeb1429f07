"""Batched rollouts under attack: K envs, one attack call per step for all of them.

`Attacker` decides what each env's agent sees and does at a step; `evaluate` plays whole games
with it and summarises them.
"""

from rlattack.rollout.attacker import ACTS, Act, Attacker, Step, check_act
from rlattack.rollout.evaluate import Episode, Evaluation, evaluate, split_episodes

__all__ = [
    "ACTS",
    "Act",
    "Attacker",
    "Episode",
    "Evaluation",
    "Step",
    "check_act",
    "evaluate",
    "split_episodes",
]
