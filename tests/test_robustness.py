"""Robustness evaluation: the attack set, the smallest-eps search, the curve's area, the command."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from rlattack.attacks import PGD
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from rlattack.robustness.attack_set import ATTACK_SET, grid_entry, name_of, parse_attack_set
from rlattack.robustness.curve import area
from rlattack.robustness.search import find_eps
from tests.test_cli import run


def test_the_search_finds_a_linear_policys_distance_to_its_boundary() -> None:
    # two actions, logits (0, z) with z = w . x + b: the L-inf distance of x to z = 0 is |z| / |w|_1
    torch.manual_seed(0)
    w, x = torch.randn(12) * 0.1, torch.full((1, 12), 0.5)
    b = 0.03 - float(w @ x[0])  # z(x) = 0.03
    net = nn.Linear(12, 2)
    with torch.no_grad():
        net.weight.copy_(torch.stack([torch.zeros(12), w]))
        net.bias.copy_(torch.tensor([0.0, b]))
    policy = Policy(net, 2, (12,), input_scale=1.0)
    distance = 0.03 / float(w.abs().sum())

    def kept(eps: float) -> float:  # 1 while the strongest attack leaves the action, 0 once it moves it
        return float(not PGD(eps, steps=10, seed=0)(policy, x).changed.item())

    found = find_eps(kept, threshold=0.5, known={0.0: 1.0}, high=4 * distance, tolerance=distance / 100)
    assert found.eps is not None and abs(found.eps - distance) <= distance / 100
    assert 0 < found.evaluations <= 10  # the first check and ceil(log2(4 * 100)) bisection steps
    assert find_eps(kept, 0.5, {0.0: 1.0}, high=distance / 2, tolerance=1e-4).eps is None  # never broken


def test_known_points_narrow_the_search_for_free() -> None:
    calls = []

    def worst(eps: float) -> float:
        calls.append(eps)
        return 10.0 if eps < 0.3 else -10.0

    found = find_eps(worst, 0.0, {0.0: 10.0, 0.25: 10.0, 0.5: -10.0}, high=0.5, tolerance=0.01)
    assert abs(found.eps - 0.3) <= 0.01 and found.evaluations == len(calls) and min(calls) > 0.25


def test_the_area_is_one_without_loss_and_shrinks_to_random_play() -> None:
    assert area([1, 2], [20.0, 20.0], clean=20.0, random=-20.0) == 1.0
    assert area([1, 2], [-20.0, -20.0], clean=20.0, random=-20.0) == pytest.approx(0.25)  # (1 + 0) / 2 / 2
    assert area([1, 2], [0.0, -30.0], clean=20.0, random=-20.0) == pytest.approx((0.75 + 0.25) / 2)
    assert area([1], [0.0], clean=-20.0, random=-20.0) is None  # no better than random: no scale


def test_the_attack_set_names_round_trip_and_bad_names_are_refused() -> None:
    for name in ATTACK_SET:
        entry = grid_entry(name, "pong-dqn")
        assert name_of(entry.pop("name"), entry) == name
    assert parse_attack_set("pgd, mad,pgd") == ["pgd", "mad"]
    with pytest.raises(UserInputError, match="unknown attacks cw"):
        parse_attack_set("pgd,cw")


@pytest.mark.slow  # 36 s: 22 whole games of Pong
def test_robustness_from_the_command_line_resumes_and_writes_its_json(
    monkeypatch, tiny_atari_agent, tmp_path
) -> None:
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    args = ["robustness", "--agent", tiny_atari_agent, "--game", "pong", "--eps", "1/255", "--eps", "4/255"]
    args += ["--episodes", "1", "--envs", "1", "--states", "40", "--out", str(out), "--no-progress"]
    assert run(monkeypatch, *args, "--json", str(summary)) == 0
    result = json.loads(summary.read_text())
    assert {"clean", "eps", "auc", "min_eps"} <= result.keys() and result["min_eps"] is None
    assert [row["eps"] for row in result["eps"]] == [1 / 255, 4 / 255]
    for row in result["eps"]:
        assert set(row["attacks"]) == set(parse_attack_set("pgd,mad,momentum,pgd-margin,noise"))
        worst = min(row["attacks"].values(), key=lambda s: s["return_mean"])
        assert row["worst_case"]["return_mean"] == worst["return_mean"]
        assert row["attacks"][row["worst_case"]["attack"]]["return_mean"] == worst["return_mean"]
    assert result["eps"][0]["certified_action_rate"] >= result["eps"][1]["certified_action_rate"]
    cells = sorted((out / "cells").glob("*.json"))
    assert len(cells) == 1 + 5 * 2 and (out / "robustness.png").stat().st_size > 0
    stamps = [p.stat().st_mtime_ns for p in cells]
    assert run(monkeypatch, *args) == 0  # again: every cell kept, none played again
    assert [p.stat().st_mtime_ns for p in sorted((out / "cells").glob("*.json"))] == stamps
    assert (
        run(monkeypatch, "report", str(out)) == 0 and (out / "report" / "robustness.png").stat().st_size > 0
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--eps", "0"], "give at least one --eps above 0"),
        (["--eps", "1/255", "--attacks", "pgd,cw"], "unknown attacks cw"),
        (["--eps", "lots"], "eps 'lots' is not a number"),
        (["--eps", "1/255", "--certify", "crown"], "'--certify': 'crown' is not one of"),
    ],
)
def test_bad_robustness_requests_are_one_line(
    monkeypatch, capsys, tiny_atari_agent, tmp_path, extra, message
):
    args = ["robustness", "--agent", tiny_atari_agent, "--game", "pong", "--out", str(tmp_path / "out")]
    assert run(monkeypatch, *args, *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not (tmp_path / "out").exists()


def test_smoothing_certifies_on_the_agents_play_and_scores_the_smoothed_policy(
    monkeypatch, tiny_atari_agent, tmp_path
) -> None:
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    args = [
        "robustness",
        "--agent",
        tiny_atari_agent,
        "--game",
        "pong",
        "--eps",
        "1/255",
        "--attacks",
        "noise",
    ]
    args += ["--certify", "smoothing", "--sigma", "0.05", "--states", "8", "--episodes", "1", "--envs", "1"]
    assert run(monkeypatch, *args, "--out", str(out), "--json", str(summary), "--no-progress") == 0
    result = json.loads(summary.read_text())
    assert result["certify"]["method"] == "smoothing" and result["certify"]["sigma"] == 0.05
    kept = json.loads((out / "certificates.json").read_text())
    (rates,) = [v for k, v in kept.items() if not k.endswith("return")]
    assert result["eps"][0]["certified_action_rate"] == rates[str(1 / 255)]
    assert result["certify"]["smoothed_clean_return"] == kept[next(k for k in kept if k.endswith("return"))]
