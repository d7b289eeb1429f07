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
from rlattack.rollout.agent_step import Act, Attacker
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
        for p in (policy, source):
            if p is not None:
                p.check_fits(int(env.single_action_space.n), env.single_observation_space.shape, game)
        attacker = Attacker(policy, attack, schedule, envs, source, act, seed)
        return _play(env, attacker, split_episodes(episodes, envs), seed, progress)
    finally:
        env.close()


def _play(env, attacker: Attacker, quota: np.ndarray, seed: int, progress: bool) -> Evaluation:
    k = len(quota)
    obs, _ = env.reset(seed=seed)
    finished = np.zeros(k, dtype=int)
    current = [Episode(env=i, score=0.0, length=0) for i in range(k)]
    done_games: list[Episode] = []
    new_game = np.ones(k, dtype=bool)
    actions = np.zeros(k, dtype=np.int64)
    bar = tqdm(total=int(quota.sum()), unit="game", disable=not progress, leave=False)
    start = time.perf_counter()
    while (finished < quota).any():
        live = np.flatnonzero(finished < quota)
        lengths = np.array([current[i].length for i in live])
        step = attacker.observe(obs[live], new_game[live], lengths, live)
        actions[:] = 0
        actions[live] = step.action
        obs, reward, terminated, truncated, _ = env.step(actions)
        new_game = terminated | truncated
        for j, i in enumerate(live.tolist()):
            game = current[i]
            game.score += float(reward[i])
            game.length += 1
            if step.attacked[j]:
                game.attacked_steps += 1
                game.action_changes += int(step.action[j] != step.clean_action[j])
                game.source_successes += int(step.source_success[j])
                if step.target[j] >= 0:
                    game.targeted_steps += 1
                    game.target_hits += int(step.action[j] == step.target[j])
                game.linf_sum += float(step.linf[j])
                game.l2_sum += float(step.l2[j])
                game.l0_sum += float(step.l0[j])
            if new_game[i]:
                game.truncated = bool(truncated[i] and not terminated[i])
                done_games.append(game)
                finished[i] += 1
                current[i] = Episode(env=i, score=0.0, length=0)
                bar.update(1)
                bar.set_postfix(score=game.score)
    bar.close()
    return Evaluation(done_games, wall_s=time.perf_counter() - start)
