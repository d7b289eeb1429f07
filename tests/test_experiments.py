"""Grids: configs, cells, the resumable store, local and Ray backends, and interruptions."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from rlattack.cli import main
from rlattack.errors import UserInputError
from rlattack.grid import GridConfig, expand, load_grid, run_grid
from rlattack.grid import run as grid_run
from rlattack.grid.store import ResultStore
from rlattack.loading import load_torchscript
from rlattack.policies import weights_digest
from rlattack.provenance import code_version
from tests.test_cli import run as cli

TIMING = {"steps_per_s", "attacked_steps_per_s", "wall_s"}


def write_config(path: Path, agent: str, **overrides) -> Path:
    """A grid of whole Pong games with the tiny agent: a second or so per cell."""
    grid = {"agents": [agent], "games": ["pong"], "episodes": 2, "envs": 2, "device": "cpu"}
    path.write_text(yaml.safe_dump(grid | overrides))
    return path


def results(out: Path) -> dict[str, dict]:
    """Records by id, without the fields that measure wall time."""
    found = {}
    for record in ResultStore(out).records():
        summary = {k: v for k, v in record["summary"].items() if k not in TIMING}
        found[record["id"]] = {"cell": record["cell"], "summary": summary, "episodes": record["episodes"]}
    return found


def test_grid_expands_every_cell_once() -> None:
    grid = GridConfig(
        agents=["pong-dqn"],
        attacks=["none", "fgsm", {"name": "noise", "eps": ["2/255"], "norms": ["inf"]}],
        norms=["inf", 2],
        eps=[0.001, "1/255"],
        seeds=[0, 1],
        schedules=["every", "every:2"],
    )
    cells = expand(grid)
    clean = [c for c in cells if c.attack == "none"]
    fgsm = [c for c in cells if c.attack == "fgsm"]
    noise = [c for c in cells if c.attack == "noise"]
    assert len(clean) == 2 and {c.seed for c in clean} == {0, 1} and {c.norm for c in clean} == {None}
    assert len(fgsm) == 2 * 2 * 2 * 2 and {c.eps for c in fgsm} == {0.001, 1 / 255}
    assert len(noise) == 2 * 2 and {(c.eps, c.norm) for c in noise} == {(2 / 255, "inf")}
    assert {c.game for c in cells} == {"pong"}  # the zoo victim's own game
    assert len({c.id for c in cells}) == len(cells)
    assert [c.id for c in expand(grid)] == [c.id for c in cells]  # stable across calls
    # How a grid runs is not what it computes: the cells stay the same.
    assert [c.id for c in expand(grid.model_copy(update={"threads": 2, "device": "cpu"}))] == [
        c.id for c in cells
    ]


def test_toml_configs_read_like_yaml(tmp_path) -> None:
    toml = tmp_path / "grid.toml"
    toml.write_text('agents = ["pong-dqn"]\neps = ["1/255", 0.01]\nnorms = ["inf", "2"]\n')
    yaml_path = tmp_path / "grid.yaml"
    yaml_path.write_text("agents: [pong-dqn]\neps: [1/255, 0.01]\nnorms: [inf, 2]\n")
    assert load_grid(toml) == load_grid(yaml_path)


def run_cli(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["rlattack", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code or 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epss": [0.1]}, "unknown key 'epss'"),
        ({"eps": [-0.1]}, "eps must be a finite number >= 0"),
        ({"eps": ["1/0"]}, "not a number or a fraction"),
        ({"norms": [3]}, "unknown norm '3'; choose one of inf, 2, 1"),
        ({"agents": []}, "agents: List should have at least 1 item"),
        ({"episodes": 0}, "episodes: Input should be greater than or equal to 1"),
        ({"attacks": ["deepfool"], "eps": [0.1]}, "unknown attack 'deepfool'"),
        ({"attacks": [{"name": "fgsm", "wobble": 3}], "eps": [0.1]}, "attack 'fgsm' does not take wobble"),
        (
            {"attacks": [{"name": "pgd", "steps": 0}], "eps": [0.1]},
            "attacks.0: steps: Input should be greater",
        ),
        ({"attacks": [{"name": "pgd", "norms": ["1"]}], "eps": [0.1]}, "PGD supports norms inf and 2"),
        ({"attacks": ["fgsm"]}, "attack 'fgsm' needs eps values"),
        ({"schedules": ["sometimes"], "eps": [0.1]}, "bad schedule 'sometimes'"),
        ({"games": ["pongg"]}, "unknown Atari game 'pongg'"),
        ({"games": ["breakout"]}, "action-space mismatch"),
        ({"games": None}, "`games` in the config is needed"),
        ({"device": "tpu"}, "device: Input should be 'auto', 'cpu' or 'cuda'"),
    ],
)
def test_bad_configs_are_one_line_and_status_2(
    monkeypatch, capsys, tmp_path, tiny_atari_agent, change, message
) -> None:
    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, **({"attacks": ["none"]} | change))
    assert run_cli(monkeypatch, "run", str(config), "--out", str(tmp_path / "out"), "--no-progress") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rlattack: error:") and err.count("\n") == 0 and message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [("agents: [a\n", "cannot parse"), ("- just a list\n", "must be a mapping")],
)
def test_unreadable_configs_are_refused(tmp_path, text, message) -> None:
    config = tmp_path / "grid.yaml"
    config.write_text(text)
    with pytest.raises(UserInputError, match=message):
        load_grid(config)
    with pytest.raises(UserInputError, match=r"must end in \.yaml"):
        load_grid(config.rename(tmp_path / "grid.json"))


def test_grid_runs_locally_and_on_ray_with_equal_results(tmp_path, tiny_atari_agent) -> None:
    pytest.importorskip("ray")
    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, attacks=["fgsm"], eps=[0.002, 0.02])
    local = run_grid(config, tmp_path / "local", progress=False)
    assert (local.computed, local.skipped) == (2, 0)
    ray = run_grid(config, tmp_path / "ray", backend="ray", progress=False)
    assert (ray.computed, ray.skipped) == (2, 0)
    assert results(tmp_path / "local") == results(tmp_path / "ray")
    runs = results(tmp_path / "local")
    assert len(runs) == 2 and {r["summary"]["episodes"] for r in runs.values()} == {2}
    assert len({r["summary"]["action_change_rate"] for r in runs.values()}) == 2  # the eps differ
    for out in (tmp_path / "local", tmp_path / "ray"):
        for table in (pd.read_csv(out / "summary.csv"), pd.read_parquet(out / "summary.parquet")):
            assert sorted(table.id) == sorted(runs) and set(table.eps) == {0.002, 0.02}
        info = json.loads((out / "run.json").read_text())
        assert info["grid"]["eps"] == [0.002, 0.02] and "version" in info["code"]
        assert (out / "config.yaml").read_text() == config.read_text()
    again = run_grid(config, tmp_path / "local", progress=False)
    assert (again.computed, again.skipped) == (0, 2)
    assert results(tmp_path / "local") == runs


def test_a_failing_cell_keeps_the_finished_ones(monkeypatch, tmp_path, tiny_atari_agent) -> None:
    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, attacks=["none", "fgsm"], eps=[0.01])
    calls = []

    def crash_on_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("worker lost")
        return real_evaluate(*args, **kwargs)

    real_evaluate = grid_run.evaluate
    monkeypatch.setattr(grid_run, "evaluate", crash_on_second)
    with pytest.raises(RuntimeError, match="worker lost"):
        run_grid(config, tmp_path / "out", progress=False)
    assert len(results(tmp_path / "out")) == 1
    assert len(pd.read_csv(tmp_path / "out" / "summary.csv")) == 1
    resumed = run_grid(config, tmp_path / "out", progress=False)
    assert (resumed.computed, resumed.skipped) == (1, 1) and len(calls) == 3
    assert len(results(tmp_path / "out")) == 2


def finished_records(out: Path) -> list[Path]:
    """Cell records, not the temporary files they are written through."""
    return [p for p in out.glob("cells/*.json") if not p.name.startswith(".")]


def test_ctrl_c_mid_grid_then_rerun_finishes_every_cell_once(tmp_path, tiny_atari_agent) -> None:
    config = write_config(
        tmp_path / "grid.yaml", tiny_atari_agent, attacks=["fgsm"], eps=[0.001, 0.002, 0.004], envs=1
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "rlattack", "run", str(config), "--out", str(out), "--no-progress"]
    # A shell that starts jobs in the background ignores SIGINT for them, and Python then never
    # raises KeyboardInterrupt: give the child the default disposition, as a terminal would.
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not finished_records(out) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 130 and "interrupted" in stderr
    before = {path.name: path.read_bytes() for path in finished_records(out)}
    assert 1 <= len(before) < 3
    resumed = run_grid(config, out, progress=False)
    assert (resumed.computed, resumed.skipped) == (3 - len(before), len(before))
    assert all((out / "cells" / name).read_bytes() == data for name, data in before.items())
    table = pd.read_csv(out / "summary.csv")
    assert len(table) == 3 and table.id.is_unique and sorted(table.eps) == [0.001, 0.002, 0.004]
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_a_changed_grid_is_refused_unless_extended(tmp_path, tiny_atari_agent) -> None:
    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, attacks=["none"], episodes=1, envs=1)
    out = tmp_path / "out"
    run_grid(config, out, progress=False)
    write_config(config, tiny_atari_agent, attacks=["none"], episodes=1, envs=1, threads=2)
    assert run_grid(config, out, progress=False).skipped == 1  # how it runs is not what it computes
    write_config(config, tiny_atari_agent, attacks=["none"], episodes=1, envs=1, seeds=[0, 1])
    with pytest.raises(UserInputError, match=r"different grid \(changed: seeds\)"):
        run_grid(config, out, progress=False)
    extended = run_grid(config, out, extend=True, progress=False)
    assert (extended.computed, extended.skipped) == (1, 1)
    info = json.loads((out / "run.json").read_text())
    assert info["earlier_grids"][0]["seeds"] == [0] and info["grid"]["seeds"] == [0, 1]
    assert len(info["runs"]) == 3


def test_a_directory_has_one_writer_and_refuses_damaged_records(tmp_path, tiny_atari_agent) -> None:
    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, attacks=["none"], episodes=1, envs=1)
    out = tmp_path / "out"
    with ResultStore(out).lock(), pytest.raises(UserInputError, match="another `rlattack run`"):
        run_grid(config, out, progress=False)
    (out / "cells").mkdir()
    (out / "cells" / ".abc.json.tmp.json").write_text('{"id": ')  # left by a killed writer
    run_grid(config, out, progress=False)
    assert len(results(out)) == 1 and not list((out / "cells").glob(".*"))
    record = next((out / "cells").glob("*.json"))
    record.write_text(record.read_text()[:50])
    with pytest.raises(UserInputError, match="unreadable result file"):
        run_grid(config, out, progress=False)


def test_a_cell_is_played_again_when_its_agent_holds_other_weights(tmp_path, tiny_atari_agent) -> None:
    path = tmp_path / "agent.pt"
    path.write_bytes(Path(tiny_atari_agent[len("torch:") :]).read_bytes())
    config = write_config(tmp_path / "grid.yaml", f"torch:{path}", attacks=["fgsm"], eps=[0.01], envs=1)
    out = tmp_path / "out"
    first = run_grid(config, out, progress=False)
    (record,) = finished_records(out)
    stamp, measured, text = record.stat().st_mtime_ns, results(out), record.read_text()
    before = json.loads(text)["weights"]
    assert before == weights_digest(load_torchscript(str(path)))
    again = run_grid(config, out, progress=False)
    assert (again.computed, again.skipped, again.replayed) == (0, 1, 0) and first.replayed == 0
    assert record.stat().st_mtime_ns == stamp  # the same weights: kept as it is
    net = torch.jit.load(str(path))
    with torch.no_grad():
        next(net.parameters()).mul_(-1.0)  # the agent trained further, saved under the same name
    net.save(str(path))
    grid_run._policy.cache_clear()
    trained = run_grid(config, out, progress=False)
    assert (trained.computed, trained.skipped, trained.replayed) == (1, 0, 1)
    assert results(out).keys() == measured.keys() and results(out) != measured
    assert json.loads(record.read_text())["weights"] == weights_digest(load_torchscript(str(path))) != before
    after = json.loads(record.read_text())["weights"]
    for _ in range(2):  # back to the first weights, then the second again: every record is kept
        with torch.no_grad():
            next(net.parameters()).mul_(-1.0)
        net.save(str(path))
        grid_run._policy.cache_clear()
        assert run_grid(config, out, progress=False).replayed == 1
    kept = sorted(p.name for p in (out / "cells" / "superseded").iterdir())
    assert kept == sorted(f"{record.stem}-{tag}.json" for tag in (before, after, f"{before}-2"))
    assert (out / "cells" / "superseded" / f"{record.stem}-{before}.json").read_text() == text  # not lost
    assert list(pd.read_csv(out / "summary.csv").weights) == [json.loads(record.read_text())["weights"]]


def test_a_transfer_cell_is_played_again_when_its_surrogate_holds_other_weights(
    tmp_path, tiny_atari_agent
) -> None:
    surrogate = tmp_path / "surrogate.pt"
    surrogate.write_bytes(Path(tiny_atari_agent[len("torch:") :]).read_bytes())
    transfer = {"name": "fgsm", "surrogate": f"torch:{surrogate}"}
    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, attacks=[transfer], eps=[0.01], envs=1)
    out = tmp_path / "out"
    run_grid(config, out, progress=False)
    (record,) = finished_records(out)
    before = json.loads(record.read_text())
    assert before["surrogate_weights"] == weights_digest(load_torchscript(str(surrogate)))
    assert run_grid(config, out, progress=False).skipped == 1
    net = torch.jit.load(str(surrogate))
    with torch.no_grad():
        next(net.parameters()).mul_(-1.0)  # the surrogate trained further; the victim is unchanged
    net.save(str(surrogate))
    grid_run._policy.cache_clear()
    again = run_grid(config, out, progress=False)
    assert (again.computed, again.replayed) == (1, 1)
    after = json.loads(record.read_text())
    assert after["weights"] == before["weights"] and after["surrogate_weights"] != before["surrogate_weights"]
    assert (out / "cells" / "superseded" / f"{record.stem}-{before['weights']}.json").is_file()


def test_zoo_names_not_bundled_yet_are_left_out_only_when_asked(tmp_path, tiny_atari_agent) -> None:
    later = "chopper-command-ppo-s9"  # a name the zoo may hold one day
    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, attacks=["none"], episodes=1, envs=1)
    grid = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump(grid | {"agents": [tiny_atari_agent, later, later]}))
    out = tmp_path / "out"
    with pytest.raises(UserInputError, match=f"unknown agent '{later}'"):
        run_grid(config, out, progress=False)
    done = run_grid(config, out, progress=False, skip_missing=True)
    assert (done.computed, done.left_out) == (1, [later])
    assert {c.agent for c in done.cells} == {tiny_atari_agent}
    info = json.loads((out / "run.json").read_text())
    assert info["grid"]["agents"] == [tiny_atari_agent, later, later]  # the grid as written
    assert info["runs"][-1]["left_out"] == [later]
    config.write_text(yaml.safe_dump(grid | {"agents": [later]}))
    with pytest.raises(UserInputError, match=rf"none of the agents .* is bundled yet: {later}$"):
        run_grid(config, tmp_path / "other", progress=False, skip_missing=True)
    config.write_text(yaml.safe_dump(grid | {"agents": [tiny_atari_agent, "pong-dq"]}))
    with pytest.raises(UserInputError, match="unknown agent 'pong-dq'"):  # a typo is not left out
        run_grid(config, tmp_path / "typo", progress=False, skip_missing=True)


def test_a_victim_bundled_later_joins_its_grid(monkeypatch, tmp_path, tiny_atari_agent) -> None:
    later = "chopper-command-ppo-s9"
    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, attacks=["none"], episodes=1, envs=1)
    grid = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump(grid | {"agents": [tiny_atari_agent, later]}))
    out = tmp_path / "out"
    first = run_grid(config, out, progress=False, skip_missing=True)
    (kept,) = finished_records(out)
    stamp = kept.stat().st_mtime_ns
    load = grid_run.load_policy  # now `later` loads: the tiny agent under that name
    monkeypatch.setattr(grid_run, "load_policy", lambda a, d: load({later: tiny_atari_agent}.get(a, a), d))
    monkeypatch.setattr("rlattack.zoo.not_bundled", lambda agents: [])
    grid_run._policy.cache_clear()
    second = run_grid(config, out, progress=False, skip_missing=True)  # the same grid: no --extend
    assert (first.computed, second.computed, second.skipped, second.left_out) == (1, 1, 1, [])
    assert {r["cell"]["agent"] for r in ResultStore(out).records()} == {tiny_atari_agent, later}
    assert kept.stat().st_mtime_ns == stamp
    grid_run._policy.cache_clear()


def test_run_skip_missing_from_the_command_line(monkeypatch, tmp_path, tiny_atari_agent, capsys) -> None:
    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, attacks=["none"], episodes=1, envs=1)
    config.write_text(
        yaml.safe_dump(yaml.safe_load(config.read_text()) | {"agents": [tiny_atari_agent, "pong-trpo-s9"]})
    )
    args = ["run", str(config), "--out", str(tmp_path / "out"), "--no-progress"]
    assert cli(monkeypatch, *args) == 2 and "unknown agent 'pong-trpo-s9'" in capsys.readouterr().err
    assert cli(monkeypatch, *args, "--skip-missing") == 0
    assert "left out, not in the zoo yet: pong-trpo-s9\n" in capsys.readouterr().out


def test_code_counts_as_edited_for_code_changes_only(tmp_path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    for name in ("pyproject.toml", "rlattack/attack.py", "agents/dqn.py", "experiments/results/run.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("0\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "start")
    (tmp_path / "experiments/results/run.json").write_text("1\n")  # what an experiment writes
    assert code_version(tmp_path)["dirty"] is False
    (tmp_path / "agents/dqn.py").write_text("1\n")
    assert code_version(tmp_path)["dirty"] is True


@pytest.mark.parametrize(
    "results", sorted({p.parent for p in Path("experiments").glob("*/results/**/config.yaml")}), ids=str
)
def test_every_committed_results_folder_holds_every_cell_of_its_grid(results: Path) -> None:
    """What a rerun of the committed experiments would compute: nothing (cell ids unchanged).
    A robustness folder's grid is `grid.yaml` (its `config.yaml` is from before it wrote one)."""
    from rlattack import zoo
    from rlattack.grid.config import expand, load_grid

    grid = load_grid(results / "grid.yaml" if (results / "grid.yaml").is_file() else results / "config.yaml")
    present = [a for a in grid.agents if a not in zoo.not_bundled(grid.agents)]
    cells = expand(grid.model_copy(update={"agents": present}))
    done = ResultStore(results).finished()
    assert [c.id for c in cells if c.id not in done] == []
