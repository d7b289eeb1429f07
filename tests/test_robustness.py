"""Robustness evaluation: the attack set, the smallest-eps search, the curve's area, the command."""

from __future__ import annotations

import json
import re
from pathlib import Path
from statistics import NormalDist

import pytest
import torch
from rich.console import Console
from torch import nn

from rlattack import zoo
from rlattack.attacks import PGD
from rlattack.certify.smoothing import largest_radius_eps
from rlattack.errors import UserInputError
from rlattack.grid import run as grid_run
from rlattack.intervals import evidence_warnings
from rlattack.plots import plot_curve
from rlattack.policies import Policy
from rlattack.robustness.attack_set import ATTACK_SET, grid_entry, name_of, parse_attack_set, surrogate_for
from rlattack.robustness.curve import area, at_floor
from rlattack.robustness.evaluation import worst_case
from rlattack.robustness.search import find_eps
from rlattack.tables import robustness_caption, robustness_table
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
    args += ["--attacks", "pgd,mad,momentum,pgd-margin,noise"]
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
    assert len(cells) == 1 + 5 * 2 + 1 and (out / "robustness.png").stat().st_size > 0  # + APGD-CE at 32/255
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
    (rates,) = [v for k, v in kept.items() if not k.endswith(("return", "radius"))]
    assert result["eps"][0]["certified_action_rate"] == rates[str(1 / 255)] == 0.0
    assert result["certify"]["smoothed_clean_return"] == kept[next(k for k in kept if k.endswith("return"))]
    # sigma 0.05 with 1,000 draws reaches 0.05 * Phi^-1(0.001 ** (1 / 1000)) / sqrt(4 * 84 * 84) at most
    reach = 0.05 * 2.4617 / 168
    radius = result["certify"]["radius"]
    assert 0 <= radius["q25"] <= radius["median"] <= radius["q75"] <= reach * 1.001
    (note,) = [n for n in result["notes"] if n.startswith("smoothing at sigma 0.05")]
    assert f"at most eps {reach * 255:.3g}/255" in note


def test_a_search_that_breaks_at_its_lowest_point_goes_lower_and_answers_with_a_bracket() -> None:
    def worst(eps: float) -> float:
        return 10.0 if eps < 0.1 / 255 else -10.0

    found = find_eps(worst, 0.0, {0.0: 10.0, 1 / 255: -10.0}, high=1 / 255, tolerance=1 / 1020)
    assert found.low < 0.1 / 255 <= found.eps and found.eps - found.low <= 1 / 1020
    assert found.text(1 / 255) == f"between {found.low * 255:.3g}/255 and {found.eps * 255:.3g}/255"
    assert set(found.points) >= {0.0, 1 / 255, 0.5 / 255, 0.25 / 255}  # every point it knows

    broken = find_eps(lambda eps: -10.0, 0.0, {0.0: 10.0}, high=1 / 255, tolerance=1 / 1020)
    assert broken.low == 0 and broken.floor <= broken.eps < 2 * broken.floor == 2 / 1020 / 16
    assert broken.text(1 / 255).startswith(f"at most {broken.eps * 255:.3g}/255")


def test_ties_name_every_attack_at_the_minimum() -> None:
    at = {
        "clean": {"return_mean": 5.0},
        "apgd-ce": {"return_mean": -21.0},
        "noise": {"return_mean": 3.0},
        "square": {"return_mean": -21.0},
    }
    assert worst_case(at) == {
        "attack": "apgd-ce",
        "attacks_tied": ["apgd-ce", "square"],
        "return_mean": -21.0,
    }


def test_an_area_at_its_grids_floor_is_flagged_and_labelled_with_its_grid() -> None:
    # broken to random play at every listed eps: the area is the first trapezoid alone, 1/6 on 1/255, 3/255
    assert area([1 / 255, 3 / 255], [-21.0, -21.0], clean=1.0, random=-20.5) == pytest.approx(1 / 6)
    assert area([1 / 255, 3 / 255], [-21.0, -21.0], clean=20.0, random=-20.5) == pytest.approx(1 / 6)
    assert at_floor([-21.0, -21.0], random=-20.5) and not at_floor([-21.0, 0.0], random=-20.5)
    result = recorded_result() | {"auc": 1 / 6, "auc_at_floor": True, "min_eps_text": "at most 1/255"}
    caption = " ".join(robustness_caption(result))
    assert "area under the curve 0.167 over eps 1/255, 3/255 (the grid's floor" in caption


def recorded_result() -> dict:
    """A robustness summary as `rlattack robustness --json` writes it, with two games per mean."""

    def games(mean: float, std: float) -> dict:
        return {"return_mean": mean, "return_std": std, "episodes": 2}

    rows = [
        {
            "eps": e,
            "listed": listed,
            "attacks": {"apgd-ce": games(-21.0, 0.0), "square": games(-21.0, 0.0), "noise": games(4.0, 2.0)},
            "worst_case": {"attack": "apgd-ce", "attacks_tied": ["apgd-ce", "square"], "return_mean": -21.0},
            "certified_action_rate": 0.0,
        }
        for e, listed in ((0.5 / 255, False), (1 / 255, True), (3 / 255, True))
    ]
    return {
        "agent": "tiny",
        "game": "pong",
        "clean": games(1.0, 0.0),
        "eps": rows,
        "auc": 0.2,
        "auc_grid": [1 / 255, 3 / 255],
        "min_eps_text": "between 0.25/255 and 0.5/255",
        "min_eps_bracket": [0.25 / 255, 0.5 / 255],
        "threshold": -10.0,
        "random_return": -20.5,
        "certify": {
            "method": "ibp",
            "radius": {"q25": 0.0, "median": 0.5 / 255, "q75": 1 / 255, "cap": 16 / 255},
        },
        "evidence": evidence_warnings("the clean return", games(1.0, 0.0)),
    }


def test_the_table_gives_each_mean_its_interval_and_games_and_names_its_certificate() -> None:
    console = Console(width=250, record=True)
    console.print(robustness_table(recorded_result()))
    text = " ".join(console.export_text().split())  # the caption wraps
    assert "over 2 games each" in text and "certified (ibp)" in text
    assert "-21.00 (alike)" in text and "4.00 [-21.4, 29.4]" in text  # t(0.975, 1) * 2
    assert "-21.00 (apgd-ce, square)" in text and "0.5/255 °" in text
    assert "between 0.25/255 and 0.5/255" in text and "median 0.5/255, quartiles 0/255 to 1/255" in text
    assert "rests on 2 games (fewer than 5)" in text and "all 2 games scored 1" in text


def test_the_curve_draws_a_search_bracket_and_searched_points(tmp_path) -> None:
    plot_curve(recorded_result(), tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_smoothing_states_the_largest_eps_it_can_certify() -> None:
    # Cohen et al. with all 1,000 draws agreeing: sigma * Phi^-1(0.001 ** (1/1000)), in eps units
    reach = largest_radius_eps(0.25, (4, 84, 84))
    expected = 0.25 * NormalDist().inv_cdf(0.001 ** (1 / 1000)) / 168
    assert reach == pytest.approx(expected, rel=1e-9) and reach < 1 / 255


def test_robustness_plays_five_games_by_default(monkeypatch, capsys) -> None:
    assert run(monkeypatch, "robustness", "--help") == 0
    assert re.search(r"--episodes.*?\[default: 5\]", capsys.readouterr().out, re.S)


@pytest.mark.slow  # 60 s: 18 whole games of Pong
def test_a_rerun_merges_every_finished_cell_and_a_search_reports_its_points(
    monkeypatch, tiny_atari_agent, tmp_path
) -> None:
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    args = ["robustness", "--agent", tiny_atari_agent, "--game", "pong", "--episodes", "1", "--envs", "1"]
    args += ["--states", "8", "--out", str(out), "--json", str(summary), "--no-progress"]
    # every eps breaks a threshold of +100: the search halves below 1/255 down to its floor
    search = ["--attacks", "noise", "--eps", "1/255", "--eps", "2/255", "--find-eps", "--threshold", "100"]
    assert run(monkeypatch, *args, *search, "--tolerance", "1/255") == 0
    first = json.loads(summary.read_text())
    assert first["min_eps_bracket"][0] == 0 and first["min_eps"] == 1 / 255 / 16
    assert first["min_eps_text"].startswith("at most 0.0625/255")
    searched = [r["eps"] for r in first["eps"] if r["searched"]]
    assert searched == [1 / 255 / k for k in (16, 8, 4, 2)]  # in the rows, so in the table and curve
    assert [p["eps"] for p in first["search"]["points"] if p["eps"] > 0] == [*searched, 1 / 255, 2 / 255]
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}

    assert run(monkeypatch, *args, "--attacks", "fgsm", "--eps", "1/255") == 0  # fewer eps, another attack
    second = json.loads(summary.read_text())
    assert [r["eps"] for r in second["eps"]] == [r["eps"] for r in first["eps"]]  # nothing dropped
    assert [r["eps"] for r in second["eps"] if r["listed"]] == second["auc_grid"] == [1 / 255]
    for row in second["eps"]:
        assert set(row["attacks"]) == {"fgsm", "noise"}
        low = min(s["return_mean"] for s in row["attacks"].values())
        tied = [n for n, s in row["attacks"].items() if s["return_mean"] == low]
        assert row["worst_case"]["attacks_tied"] == tied and row["worst_case"]["return_mean"] == low
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json") if p.name in stamps}
    assert kept == stamps  # the first run's cells were not played again


def test_records_of_weights_the_agent_no_longer_holds_are_left_out_of_its_verdict(
    monkeypatch, tiny_atari_agent, tmp_path
) -> None:
    agent = tmp_path / "agent.pt"
    agent.write_bytes(Path(tiny_atari_agent[len("torch:") :]).read_bytes())
    out, summary = tmp_path / "out", tmp_path / "summary.json"
    args = ["robustness", "--agent", f"torch:{agent}", "--game", "pong", "--episodes", "1", "--envs", "1"]
    args += ["--eps", "1/255", "--states", "8", "--out", str(out), "--json", str(summary), "--no-progress"]
    assert run(monkeypatch, *args, "--attacks", "noise") == 0
    net = torch.jit.load(str(agent))
    with torch.no_grad():
        next(net.parameters()).mul_(-1.0)  # trained further under the same name
    net.save(str(agent))
    grid_run._policy.cache_clear()
    assert run(monkeypatch, *args, "--attacks", "fgsm") == 0
    (row,) = json.loads(summary.read_text())["eps"]
    assert set(row["attacks"]) == {"fgsm"}  # the noise record is of the old weights: not played again
    assert any(
        "weights the agent no longer holds" in note for note in json.loads(summary.read_text())["notes"]
    )


def test_the_transfer_surrogate_is_an_undefended_victim_where_one_plays() -> None:
    # pong-a3c outputs logits, as pong-trpo and the certified-trained pong-distill do: a defended
    # surrogate's attacks transfer less, so the undefended one is picked
    assert zoo.victim("pong-distill").defended and not zoo.victim("pong-trpo").defended
    assert surrogate_for(zoo.load_victim("pong-a3c"), "pong") == "pong-trpo"
