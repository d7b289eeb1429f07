"""Confidence intervals of mean game scores: Student t, and none where the games cannot give one."""

from __future__ import annotations

import math

import pytest

from rlattack.intervals import ci_text, evidence_warnings, mean_ci, summary_ci


def test_mean_ci_is_student_t() -> None:
    mean, lo, hi = mean_ci([1.0, 3.0])
    assert mean == 2.0 and hi - mean == mean - lo == pytest.approx(12.7062, rel=1e-4)  # t(0.975, 1) * 1
    assert math.isnan(mean_ci([4.0])[1])


def test_identical_games_give_no_interval_rather_than_a_zero_width_one() -> None:
    mean, lo, hi = mean_ci([-21.0, -21.0])
    assert mean == -21.0 and math.isnan(lo) and math.isnan(hi)
    alike = {"return_mean": -21.0, "return_std": 0.0, "episodes": 2}
    assert ci_text(alike) == "n/a (all 2 games alike)"
    assert any("no spread" in w for w in evidence_warnings("clean", alike))


def test_a_summary_gives_the_interval_of_its_games() -> None:
    scores = [1.0, 3.0, 8.0, -2.0]
    n, mean = len(scores), sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / n)  # over the games, as `rlattack eval`
    summary = {"return_mean": mean, "return_std": std, "episodes": n}
    assert summary_ci(summary) == pytest.approx(mean_ci(scores)[1:])
    assert ci_text(summary) == "[{:.1f}, {:.1f}]".format(*mean_ci(scores)[1:])
    assert evidence_warnings("clean", summary) == ["clean rests on 4 games (fewer than 5)"]
    assert evidence_warnings("clean", summary | {"episodes": 5}) == []
