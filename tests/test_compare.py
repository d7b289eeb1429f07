"""`rlattack report DIR1 DIR2 ...`: recorded robustness verdicts compared side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlattack.intervals import ci_text
from rlattack.robustness.compare import grid_note, read_verdicts
from tests.test_cli import run
from tests.test_grid_report import PNG, summary, verdict


def save(directory: Path, result: dict[str, Any]) -> Path:
    directory.mkdir(parents=True)
    (directory / "robustness.json").write_text(json.dumps(result))
    return directory


def test_two_agents_side_by_side_with_ties_methods_and_grids(monkeypatch, tmp_path, capsys) -> None:
    plain = verdict(
        "plain-dqn",
        {1 / 255: {"apgd-ce": -21.0, "square": -21.0, "noise": 17.0}, 3 / 255: {"apgd-ce": -21.0}},
    )
    robust = verdict(
        "robust-dqn",
        {1 / 255: {"apgd-ce": 16.0, "square": 12.0}, 0.5 / 255: {"apgd-ce": 17.0}},
        clean=summary(19.0, games=2),  # two games alike: flagged
        auc_grid=[1 / 255],
        certify={"method": "smoothing", "sigma": 0.25, "smoothed_clean_return": 15.0},
    )
    robust["eps"][0]["certified_action_rate"] = 0.9
    robust["eps"][0]["worst_case"]["attacks_tied"] = ["square"]
    robust["eps"][1]["listed"] = False  # a point only the search measured
    dirs = [save(tmp_path / "plain", plain), save(tmp_path / "robust", robust)]
    out = tmp_path / "compared"
    assert run(monkeypatch, "report", *map(str, dirs), "--out", str(out)) == 0
    assert (out / "robustness_compare.png").read_bytes()[:4] == PNG
    terminal = capsys.readouterr().out
    assert "certified at 1/255" in terminal and "plain-dqn" in terminal and "robust-dqn" in terminal
    rows = {}
    for line in (out / "compare.md").read_text().splitlines():
        if line.startswith("| "):
            measure, *cells = (cell.strip() for cell in line.strip("|").split("|"))
            rows[measure] = cells
    assert rows["clean"] == [
        f"18.00 (10 games, 95% CI {ci_text(plain['clean'])})",
        "19.00 (2 games, all alike: no CI)",
    ]
    attacked = plain["eps"][1]["attacks"]["apgd-ce"]
    assert rows["worst case at 3/255"] == [
        f"-21.00 (5 games, 95% CI {ci_text(attacked)}): apgd-ce",
        "not measured",
    ]
    plain_worst, robust_worst = rows["worst case at 1/255"]
    assert plain_worst.endswith(": apgd-ce, square")  # both tied at the minimum, in the old file too
    assert robust_worst.startswith("12.00 (5 games, 95% CI [") and robust_worst.endswith(": square")
    assert "worst case at 0.5/255" not in rows  # searched, not listed: a point of the curve only
    assert rows["certified at 1/255"] == ["0.0% (ibp)", "90.0% (smoothing)"]
    assert rows["area"] == ["0.250 over eps 1/255, 3/255", "0.250 over eps 1/255"]
    notes = (out / "compare.md").read_text().split("\n- ")
    assert any(
        n.startswith("the areas are not comparable: they were computed over different eps") for n in notes
    )
    assert any(n.startswith("robust-dqn's clean play rests on 2 games") for n in notes)


def test_areas_over_one_grid_raise_no_note_and_one_agent_twice_is_told_apart(tmp_path) -> None:
    a = save(tmp_path / "a", verdict("dqn", {1 / 255: {"apgd-ce": -21.0}}))
    b = save(tmp_path / "b", verdict("dqn", {1 / 255: {"apgd-ce": -20.0}}, auc_grid=[1 / 255]))
    verdicts = read_verdicts([a, b])
    assert grid_note(verdicts) is None
    assert [v.label for v in verdicts] == [f"dqn ({a})", f"dqn ({b})"]


def test_a_comparison_refuses_bad_directories_in_one_line(monkeypatch, tmp_path, capsys) -> None:
    good = save(tmp_path / "good", verdict("dqn", {1 / 255: {"apgd-ce": -21.0}}))
    grid_only = tmp_path / "grid-only"
    (grid_only / "cells").mkdir(parents=True)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "robustness.json").write_text("{not json")
    out = tmp_path / "out"
    cases = [
        ([good, grid_only, "--out", out], f"{grid_only} holds no robustness.json"),
        ([good, corrupt, "--out", out], f"{corrupt / 'robustness.json'} is not JSON"),
        ([good, good], "comparing 2 directories needs --out"),
    ]
    for args, message in cases:
        assert run(monkeypatch, "report", *map(str, args)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    assert not out.exists()
