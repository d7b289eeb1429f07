"""Batched evaluation on Pong: whole games, static split, schedules and norms accounted for."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from rich.console import Console

from rlattack.attacks import FGSM, JSMA
from rlattack.attacks.targets import FixedAction
from rlattack.errors import UserInputError
from rlattack.observations import FRAME_SKIP, MAX_FRAMES
from rlattack.rollout.evaluate import evaluate, split_episodes
from rlattack.sb3 import load_sb3
from rlattack.schedules import EveryN, parse_schedule
from rlattack.tables import SUMMARY_COLUMNS, robustness_table, summary_table


def test_games_are_split_statically() -> None:
    assert split_episodes(5, 2).tolist() == [3, 2]
    assert split_episodes(4, 4).tolist() == [1, 1, 1, 1]
    assert split_episodes(7, 3).sum() == 7


def test_clean_evaluation_counts_whole_games(sb3_models) -> None:
    result = evaluate(load_sb3(sb3_models["dqn"]), "pong", None, episodes=3, envs=2, progress=False)
    s = result.summary
    assert s["episodes"] == 3 and sorted(e.env for e in result.episodes) == [0, 0, 1]
    # whole games: each ended by the game (a side reached 21), none cut by the frame cap
    assert all(e.length < MAX_FRAMES // FRAME_SKIP and float(e.score).is_integer() for e in result.episodes)
    assert min(e.score for e in result.episodes) < 0  # an untrained agent loses points
    assert s["attacked_steps"] == 0 and s["action_change_rate"] == 0 and s["l0_mean"] == 0
    assert s["target_rate"] is None and s["games_cut"] == 0 and not any(e.truncated for e in result.episodes)
    assert s["steps"] == sum(e.length for e in result.episodes) > 0
    assert json.loads(json.dumps(result.to_dict()))["summary"] == s


def test_attacked_evaluation_records_schedule_and_norms(sb3_models) -> None:
    attack = FGSM(2 / 255, surface="frame", quantize=True)
    result = evaluate(
        load_sb3(sb3_models["dqn"]), "pong", attack, EveryN(3), episodes=2, envs=2, progress=False
    )
    for e in result.episodes:
        assert e.attacked_steps == -(-e.length // 3)  # steps 0, 3, 6, ... of each game
        assert e.l0_sum <= 84 * 84 * e.attacked_steps
    s = result.summary
    assert s["linf_mean"] == pytest.approx(2 / 255, rel=1e-4)
    assert 0 < s["l0_mean"] <= 84 * 84
    changes = sum(e.action_changes for e in result.episodes) / sum(e.attacked_steps for e in result.episodes)
    assert s["action_change_rate"] == changes and s["target_rate"] is None


def test_targeted_attacks_report_how_often_the_target_was_taken(sb3_models) -> None:
    attack = JSMA(1.0, gamma=0.002, target=FixedAction(3))
    result = evaluate(load_sb3(sb3_models["dqn"]), "pong", attack, EveryN(8), episodes=1, progress=False)
    game = result.episodes[0]
    assert game.targeted_steps == game.attacked_steps > 0
    assert result.summary["target_rate"] == game.target_hits / game.targeted_steps


def test_same_seed_same_games(sb3_models) -> None:
    policy = load_sb3(sb3_models["dqn"])
    runs = [
        evaluate(policy, "pong", FGSM(1 / 255), EveryN(4), episodes=1, envs=1, seed=3, progress=False)
        for _ in range(2)
    ]
    assert runs[0].episodes == runs[1].episodes


def test_bad_requests_are_refused(sb3_models) -> None:
    policy = load_sb3(sb3_models["dqn"])
    with pytest.raises(UserInputError, match="at least one episode"):
        evaluate(policy, "pong", episodes=0)
    with pytest.raises(UserInputError, match="action-space mismatch"):
        evaluate(policy, "breakout", episodes=1, progress=False)
    with pytest.raises(UserInputError, match="bad schedule"):
        parse_schedule("sometimes")
    assert parse_schedule("every:4")(np.arange(8)).tolist() == [True, False, False, False] * 2


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("every:0", "every:N needs N >= 1, got 0"),
        ("prob:1.5", "prob:P needs 0 <= P <= 1, got 1.5"),
        ("prob:nan", "prob:P needs 0 <= P <= 1, got nan"),
        ("timed:2", "timed:BETA needs 0 <= BETA <= 1, got 2.0"),
        ("every:x", "every:N (N >= 1), prob:P (0 <= P <= 1) or timed:BETA (0 <= BETA <= 1)"),
    ],
)
def test_schedule_errors_give_the_allowed_range(schedule, message) -> None:
    with pytest.raises(UserInputError) as error:
        parse_schedule(schedule)
    assert message in str(error.value)


def test_only_returns_with_games_cut_at_the_cap_are_marked() -> None:
    whole = {key: 1.0 for key, _, _ in SUMMARY_COLUMNS} | {"episodes": 4, "target_rate": None}
    console = Console(file=io.StringIO(), width=200)
    console.print(summary_table([("old record", whole), ("cut", whole | {"games_cut": 1})]))
    printed = console.file.getvalue()
    assert "1.00*" in printed and printed.count("*") == 2  # the cut row's return and the footnote
    assert "* 1 of 4 games (cut) hit the 108,000-frame cap" in printed


def test_the_robustness_table_marks_returns_with_games_cut_at_the_cap() -> None:
    def summary(mean: float, cut: int) -> dict[str, float]:
        return {"return_mean": mean, "return_std": 1.0, "episodes": 4, "games_cut": cut}

    row = {"eps": 1 / 255, "attacks": {"pgd": summary(3.0, 2), "noise": summary(9.0, 0)}}
    row |= {"worst_case": {"attack": "pgd", "return_mean": 3.0}, "certified_action_rate": None}
    result = {"agent": "a", "game": "pong", "clean": summary(10.0, 1), "eps": [row]}
    console = Console(file=io.StringIO(), width=200)
    console.print(robustness_table(result | {"auc": None, "min_eps": None}))
    printed = console.file.getvalue()
    assert "clean 10.00*" in printed and "3.00*" in printed and "9.00*" not in printed
    assert "* 3 games hit the 108,000-frame cap" in printed
