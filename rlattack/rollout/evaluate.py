"""Batched attacked evaluation: K envs, one attack call per step for all of them.

The requested games are split statically across the envs before the run (env i plays its own
quota), so short games are not over-counted. Scores are true game scores of whole games; a game
that reaches the 108,000-frame cap is cut off there, and its record and the summary say so.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
from tqdm import tqdm

from rlattack.attacks.base import Attack
from rlattack.envs import make_vector_env
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from rlattack.rollout.attacker import Act, Attacker, Step
from rlattack.schedules import Schedule


@dataclass
class Episode:
    """One finished game."""

    env: int
    score: float
    length: int
    attacked_steps: int = 0
    action_changes: int = 0
    source_successes: int = 0
    targeted_steps: int = 0
    target_hits: int = 0
    linf_sum: float = 0.0
    l2_sum: float = 0.0
    l0_sum: float = 0.0
    queries: float = 0.0
    """forward passes a score-based attack (Square) spent in this game"""
    truncated: bool = False
    """cut off at the frame cap (`MAX_FRAMES`) before the game ended: its score is a partial one"""


@dataclass
class Evaluation:
    """Every game of a run and the summary fields of the CLI contract."""

    episodes: list[Episode]
    wall_s: float
    summary: dict[str, float | None] = field(init=False)

    def __post_init__(self) -> None:
        scores = np.array([e.score for e in self.episodes])
        steps = sum(e.length for e in self.episodes)
        attacked = sum(e.attacked_steps for e in self.episodes)
        targeted = sum(e.targeted_steps for e in self.episodes)
        per_attacked = max(attacked, 1)
        changes = sum(e.action_changes for e in self.episodes)
        self.summary = {
            "return_mean": float(scores.mean()),
            "return_std": float(scores.std()),
            "episodes": len(self.episodes),
            "games_cut": sum(e.truncated for e in self.episodes),
            "steps": steps,
            "attacked_steps": attacked,
            "attacked_fraction": attacked / max(steps, 1),
            "action_change_rate": sum(e.action_changes for e in self.episodes) / per_attacked,
            "source_success_rate": sum(e.source_successes for e in self.episodes) / per_attacked,
            "target_rate": sum(e.target_hits for e in self.episodes) / targeted if targeted else None,
            "linf_mean": sum(e.linf_sum for e in self.episodes) / per_attacked,
            "l2_mean": sum(e.l2_sum for e in self.episodes) / per_attacked,
            "l0_mean": sum(e.l0_sum for e in self.episodes) / per_attacked,
            "queries_per_step": sum(e.queries for e in self.episodes) / per_attacked,
            "queries_per_change": sum(e.queries for e in self.episodes) / max(changes, 1),
            "steps_per_s": steps / self.wall_s,
            "attacked_steps_per_s": attacked / self.wall_s,
            "wall_s": self.wall_s,
        }

    def to_dict(self) -> dict:
        return {"summary": self.summary, "episodes": [asdict(e) for e in self.episodes]}


def split_episodes(episodes: int, envs: int) -> np.ndarray:
    """Games per env, fixed up front: as even as possible, the first envs take the remainder."""
    return np.array([episodes // envs + (i < episodes % envs) for i in range(envs)])


def evaluate(
    policy: Policy,
    game: str,
    attack: Attack | None = None,
    schedule: Schedule | None = None,
    episodes: int = 10,
    envs: int = 1,
    seed: int = 0,
    progress: bool = True,
    source: Policy | None = None,
    act: Act = "greedy",
) -> Evaluation:
    """Play `episodes` whole games of `game` over `envs` envs with `attack` on what the agent sees.

    With a `source`, the attack is crafted on it and shown to `policy` (black-box transfer);
    `action_change_rate` is then the transfer rate and `source_success_rate` the attack's
    white-box success on the source at the same steps. `act="sample"` samples the agent's
    actions from its policy (draws seeded by `seed`) instead of taking the greedy one.
    """
    if episodes < 1:
        raise UserInputError(f"need at least one episode, got {episodes}")
    envs = min(envs, episodes)
    env = make_vector_env(game, envs)
    try:
        for p in (policy, source, *([] if attack is None else attack.surrogates())):
            if p is not None:
                p.check_fits(int(env.single_action_space.n), env.single_observation_space.shape, game)
        attacker = Attacker(policy, attack, schedule, envs, source, act, seed)
        return _play(env, attacker, split_episodes(episodes, envs), seed, progress)
    finally:
        env.close()


COUNTS = ("attacked_steps", "action_changes", "source_successes", "targeted_steps", "target_hits")
SUMS = ("linf_sum", "l2_sum", "l0_sum", "queries")


def _tallies(step: Step) -> dict[str, np.ndarray]:
    """What this step adds to each asked env's game: counts, and norms (0 where not attacked)."""
    hit = step.attacked
    targeted = hit & (step.target >= 0)
    return {
        "attacked_steps": hit,
        "action_changes": hit & (step.action != step.clean_action),
        "source_successes": hit & step.source_success,
        "targeted_steps": targeted,
        "target_hits": targeted & (step.action == step.target),
        "linf_sum": np.where(hit, step.linf, 0.0),
        "l2_sum": np.where(hit, step.l2, 0.0),
        "l0_sum": np.where(hit, step.l0, 0.0),
        "queries": np.where(hit, step.queries, 0.0),
    }


def _play(env, attacker: Attacker, quota: np.ndarray, seed: int, progress: bool) -> Evaluation:
    """Step every env with games left to play; a game's figures are per-env array slots (numpy
    work per step, not Python per env), turned into an `Episode` when it ends."""
    k = len(quota)
    obs, _ = env.reset(seed=seed)
    finished = np.zeros(k, dtype=int)
    score, length = np.zeros(k), np.zeros(k, dtype=int)
    tally = {name: np.zeros(k, dtype=int) for name in COUNTS} | {name: np.zeros(k) for name in SUMS}
    done_games: list[Episode] = []
    new_game = np.ones(k, dtype=bool)
    actions = np.zeros(k, dtype=np.int64)
    bar = tqdm(total=int(quota.sum()), unit="game", disable=not progress, leave=False)
    start = time.perf_counter()
    while (finished < quota).any():
        live = np.flatnonzero(finished < quota)
        seen = obs if len(live) == k else obs[live]  # no copy while every env plays
        step = attacker.observe(seen, new_game[live], length[live], live)
        actions[:] = 0
        actions[live] = step.action
        obs, reward, terminated, truncated, _ = env.step(actions)
        new_game = terminated | truncated
        score[live] += reward[live]
        length[live] += 1
        for name, added in _tallies(step).items():
            tally[name][live] += added
        for i in live[new_game[live]].tolist():
            game = Episode(
                env=i,
                score=float(score[i]),
                length=int(length[i]),
                **{name: int(tally[name][i]) for name in COUNTS},
                **{name: float(tally[name][i]) for name in SUMS},
                truncated=bool(truncated[i] and not terminated[i]),
            )
            done_games.append(game)
            finished[i] += 1
            score[i], length[i] = 0.0, 0
            for values in tally.values():
                values[i] = 0
            bar.update(1)
            bar.set_postfix(score=game.score)
    bar.close()
    return Evaluation(done_games, wall_s=time.perf_counter() - start)
