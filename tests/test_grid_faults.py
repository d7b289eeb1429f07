"""Results directories under faults: refusals that write nothing, records that are JSON but not
records, user strings in the report's markdown, and a grid killed at random moments."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from rlattack.errors import UserInputError
from rlattack.grid import Cell, ResultStore, TransferRecord, run_grid, write_report
from tests.conftest import scripted_agent
from tests.test_cli import run as cli
from tests.test_experiments import write_config
from tests.test_grid_report import fake_record

NOT_RECORDS = ["{}", "[]", "null", "3", '"text"', '{"id": "x"}']
"""Valid JSON that no writer of a results directory writes."""


@pytest.fixture(scope="module")
def four_action_agent(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A TorchScript policy with 4 actions: an adversary that does not fit Pong's 6."""
    return scripted_agent(tmp_path_factory.mktemp("agents") / "four.pt", 4, seed=1)


def one_line_status_2(capsys: pytest.CaptureFixture[str], code: int, *message: str) -> None:
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlattack: error:") and "\n" not in err, err
    assert all(m in err for m in message), err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", ["action:99", "policy"])
def test_a_target_the_game_lacks_is_refused_before_anything_is_written(
    monkeypatch, capsys, tmp_path, tiny_atari_agent, four_action_agent, target
) -> None:
    target = four_action_agent.replace("torch:", "policy:torch:") if target == "policy" else target
    config = write_config(
        tmp_path / "grid.yaml", tiny_atari_agent, attacks=[{"name": "fgsm", "target": target}], eps=[0.01]
    )
    out = tmp_path / "out"
    code = cli(monkeypatch, "run", str(config), "--out", str(out), "--no-progress")
    one_line_status_2(capsys, code, "4" if target.startswith("policy") else "99")
    assert not out.exists()
    write_config(config, tiny_atari_agent, attacks=[{"name": "fgsm", "target": "action:1"}], eps=[0.01])
    fixed = run_grid(config, out, progress=False)  # the same directory, the config fixed
    assert (fixed.computed, fixed.skipped) == (1, 0)


def test_transfer_to_an_action_the_game_lacks_plays_nothing_and_writes_nothing(
    monkeypatch, capsys, tmp_path, tiny_atari_agent
) -> None:
    def no_games(*args, **kwargs):
        raise AssertionError("a game was played before the target was checked")

    monkeypatch.setattr("rlattack.blackbox.transfer.evaluate", no_games)
    out = tmp_path / "t"
    pair = ["--source", tiny_atari_agent, "--victim", tiny_atari_agent, "--game", "pong", "--eps", "0.01"]
    pair += ["--episodes", "1", "--envs", "1", "--no-progress", "--out", str(out)]
    one_line_status_2(capsys, cli(monkeypatch, "transfer", *pair, "--target", "action:99"), "99")
    assert not out.exists()


def test_an_out_that_is_a_file_is_refused_up_front(monkeypatch, capsys, tmp_path, tiny_atari_agent) -> None:
    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, attacks=["none"], episodes=1, envs=1)
    out = tmp_path / "results"
    out.write_text("not a directory\n")
    for where in (out, out / "inside"):
        code = cli(monkeypatch, "run", str(config), "--out", str(where), "--no-progress")
        one_line_status_2(capsys, code, f"--out {where}: ", "is a file, not a folder")
    assert out.read_text() == "not a directory\n" and sorted(tmp_path.iterdir()) == [config, out]


@pytest.fixture
def finished_grid(tmp_path: Path, tiny_atari_agent: str) -> tuple[Path, Path]:
    """A config and the results directory of its one finished cell."""
    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, attacks=["none"], episodes=1, envs=1)
    out = tmp_path / "out"
    run_grid(config, out, progress=False)
    return config, out


@pytest.mark.parametrize("damage", ["truncated", "{}", "[]"])
def test_a_refused_run_leaves_the_directory_as_it_was(finished_grid, damage) -> None:
    config, out = finished_grid
    record = next((out / "cells").glob("*.json"))
    record.write_text(record.read_text()[:50] if damage == "truncated" else damage)
    before = snapshot(out)
    with pytest.raises(UserInputError, match=f"result file {record}"):
        run_grid(config, out, progress=False)
    assert snapshot(out) == before


def test_a_run_refused_for_want_of_ray_leaves_the_directory_as_it_was(monkeypatch, finished_grid) -> None:
    config, out = finished_grid
    before = snapshot(out)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    with pytest.raises(UserInputError, match="needs Ray"):
        run_grid(config, out, backend="ray", progress=False)
    assert snapshot(out) == before


def test_a_directory_that_holds_no_results_takes_another_grid(finished_grid, tiny_atari_agent) -> None:
    config, out = finished_grid
    for record in (out / "cells").glob("*.json"):
        record.unlink()
    write_config(config, tiny_atari_agent, attacks=["none"], episodes=1, envs=1, seeds=[1])
    assert run_grid(config, out, progress=False).computed == 1
    info = json.loads((out / "run.json").read_text())
    assert info["grid"]["seeds"] == [1] and info["earlier_grids"] == []


def a_record(tmp_path: Path) -> ResultStore:
    store = ResultStore(tmp_path / "results")
    base = dict(
        game="pong", options={}, schedule="every", episodes=2, envs=1, surface="stack", quantize=False
    )
    store.save(fake_record(Cell(agent="a", attack="none", norm=None, eps=0.0, seed=0, **base), [1.0, 2.0], 0))
    return store


def bad_record(good: dict, damage: str) -> str:
    """A record damaged in one way: not a record at all, or one field missing or mistyped."""
    if damage in NOT_RECORDS:
        return damage
    broken = json.loads(json.dumps(good))
    if damage == "no summary":
        del broken["summary"]
    elif damage == "summary of text":
        broken["summary"]["return_mean"] = "high"
    elif damage == "episode without score":
        del broken["episodes"][0]["score"]
    elif damage == "unknown norm":
        broken["cell"]["norm"] = "7"
    elif damage == "another cell's id":
        broken["id"] = "0" * 16
    return json.dumps(broken)


RECORD_DAMAGE = [
    *NOT_RECORDS,
    "no summary",
    "summary of text",
    "episode without score",
    "unknown norm",
    "another cell's id",
]


@pytest.mark.parametrize("damage", RECORD_DAMAGE)
def test_a_cell_file_that_is_not_a_record_is_refused_naming_it(monkeypatch, capsys, tmp_path, damage) -> None:
    store = a_record(tmp_path)
    (path,) = store.cells.glob("*.json")
    path.write_text(bad_record(json.loads(path.read_text()), damage))
    for read in (store.records, store.finished, store.table):
        with pytest.raises(UserInputError, match=f"bad result file {path}: .*; delete it to recompute it"):
            read()
    code = cli(monkeypatch, "report", str(store.root))
    one_line_status_2(capsys, code, f"bad result file {path}")
    assert not (store.root / "report").exists()


@pytest.mark.parametrize("text", NOT_RECORDS)
def test_a_transfer_file_or_run_json_that_is_not_a_record_is_refused_naming_it(
    monkeypatch, capsys, tmp_path, text
) -> None:
    store = a_record(tmp_path)
    store.run_file.write_text(text)
    one_line_status_2(capsys, cli(monkeypatch, "report", str(store.root)), f"bad run file {store.run_file}")
    store.run_file.unlink()
    bad = store.transfer / "pair.json"
    bad.parent.mkdir()
    bad.write_text(text)
    one_line_status_2(capsys, cli(monkeypatch, "report", str(store.root)), f"bad transfer record {bad}")


HOSTILE = "torch:a|b <script>alert(1)</script> & c\\d\ne.pt"
"""An agent name with every character that can break a markdown table or pass HTML through."""

UNFENCED = "torch:" + "a " * 37 + "`" * 80 + " <b>x</b>"
"""An agent name that YAML folds so that its backticks are a line of their own: a closing fence."""


def table_rows(tokens: list) -> tuple[str, list[list[str]]]:
    """The first line's text and every table row's cells, as a markdown reader shows them
    (a line break, `<br>`, read back as a newline)."""

    def text(inline) -> str:
        parts = []
        for child in inline.children or []:
            assert child.type != "html_inline" or child.content == "<br>", f"HTML passed: {child.content}"
            parts.append("\n" if child.type == "html_inline" else child.content)
        return "".join(parts)

    rows: list[list[str]] = []
    in_row = False
    for t in tokens:
        if t.type in ("tr_open", "tr_close"):
            in_row = t.type == "tr_open"
            rows += [[]] if in_row else []
        elif t.type == "inline" and in_row:
            rows[-1].append(text(t))
    return text(next(t for t in tokens if t.type == "inline")), rows


def test_user_strings_in_the_report_are_escaped(tmp_path) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    store = ResultStore(tmp_path / "a|b<i>")
    base = dict(game="pong", schedule="every", episodes=2, envs=1, surface="stack", quantize=False, seed=0)
    clean = Cell(agent=HOSTILE, attack="none", options={}, norm=None, eps=0.0, **base)
    store.save(fake_record(clean, [1.0, 2.0], 0))
    targeted = {"target": "policy:x|<b>y</b>"}
    cell = Cell(agent=HOSTILE, attack="fgsm", options=targeted, norm="inf", eps=0.01, **base)
    store.save(fake_record(cell, [0.0, 1.0], 1))
    pair = dict(game="pong", attack="fgsm", norm="inf", eps=0.01, return_mean=0.0, episodes=2)
    store.save_transfer(TransferRecord(source=HOSTILE, target="t|<u>x</u>", target_rule="action:1", **pair))
    store.write_run_info({"grid": {"agents": [HOSTILE, UNFENCED]}, "created": "today", "runs": []})
    write_report(store.root, tmp_path / "report")
    tokens = (
        markdown_it.MarkdownIt("commonmark")
        .enable("table")
        .parse((tmp_path / "report" / "report.md").read_text())
    )
    assert not [t for t in tokens if t.type == "html_block"]
    (grid,) = [t for t in tokens if t.type == "fence"]
    assert yaml.safe_load(grid.content) == {"agents": [HOSTILE, UNFENCED]}
    heading, rows = table_rows(tokens)
    assert heading == "Results of a|b<i>"
    cells = [r for r in rows if len(r) == 12 and r[0] == "pong"]
    transfers = [r for r in rows if len(r) == 13 and r[0] == "pong"]
    assert len(rows) == 1 + len(cells) + 1 + len(transfers)  # two tables, each with its header row
    assert len(cells) == 2 and len(transfers) == 1
    assert [r[1] for r in cells] == [HOSTILE, HOSTILE]
    assert cells[1][2] == "fgsm target=policy:x|<b>y</b>"
    assert transfers[0][5:7] == [HOSTILE, "t|<u>x</u>"]


def summary_without_timing(out: Path) -> pd.DataFrame:
    """summary.csv without the columns that measure when and how fast a cell ran."""
    return pd.read_csv(out / "summary.csv").drop(
        columns=["steps_per_s", "attacked_steps_per_s", "wall_s", "finished_at"]
    )


def runs_recorded(out: Path) -> int:
    """How many invocations `run.json` holds (written atomically: whole or absent)."""
    return len(json.loads((out / "run.json").read_text())["runs"]) if (out / "run.json").is_file() else 0


@pytest.mark.slow
def test_a_grid_killed_at_random_moments_ends_as_an_uninterrupted_one(tmp_path, tiny_atari_agent) -> None:
    """SIGKILL at seeded random moments after each run has started writing, resumed each time:
    every cell once, the same summary.csv as a run never interrupted."""
    config = write_config(
        tmp_path / "grid.yaml",
        tiny_atari_agent,
        attacks=["none", "fgsm", "noise"],
        eps=[0.002, 0.02],
        episodes=1,
        envs=1,
    )
    whole = run_grid(config, tmp_path / "whole", progress=False)
    cells = sorted(c.id for c in whole.cells)
    assert whole.computed == len(cells) == 5
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "rlattack", "run", str(config), "--out", str(out), "--no-progress"]
    rng = random.Random(29)
    killed = 0
    for kill in range(4):
        with (tmp_path / f"stderr-{kill}.txt").open("w") as stderr:
            child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + 120
            while runs_recorded(out) == kill and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.5, 3.0))  # a cell takes about a second here
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=60)
        assert child.returncode in (0, -signal.SIGKILL), (tmp_path / f"stderr-{kill}.txt").read_text()
        killed += child.returncode == -signal.SIGKILL
        assert runs_recorded(out) == kill + 1
        for path in (out / "cells").glob("*.json"):
            if not path.name.startswith("."):  # a killed writer's temporary file is no record
                json.loads(path.read_text())
    assert killed >= 2  # not every run finished before its kill (here each is killed)
    resumed = run_grid(config, out, progress=False)
    records = [p for p in (out / "cells").glob("*.json") if not p.name.startswith(".")]
    assert sorted(p.stem for p in records) == cells
    assert (resumed.computed + resumed.skipped, resumed.replayed) == (len(cells), 0)
    assert not (out / "cells" / "superseded").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    pd.testing.assert_frame_equal(summary_without_timing(out), summary_without_timing(tmp_path / "whole"))
