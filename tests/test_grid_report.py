"""The report of a small results directory: its figures, its markdown, its statistics."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rlattack.cli import main
from rlattack.grid import Cell
from rlattack.grid.report import _eps, _games_table, attacked_points, write_report
from rlattack.grid.store import ResultStore, TransferRecord
from rlattack.intervals import mean_ci
from rlattack.rollout.evaluate import Episode, Evaluation

PNG = b"\x89PNG"


def fake_record(cell: Cell, scores: list[float], changes: int) -> dict:
    """What `run_cell` stores, for games with the given scores (100 steps, all attacked)."""
    attacked = 0 if cell.attack == "none" else 100
    games = [Episode(0, s, 100, attacked, changes if attacked else 0) for s in scores]
    return {"id": cell.id, "cell": cell.model_dump(mode="json"), **Evaluation(games, wall_s=1.0).to_dict()}


@pytest.fixture
def results_dir(tmp_path):
    """Two agents, clean and FGSM at two eps in two norms, two seeds; plus a transfer matrix."""
    store = ResultStore(tmp_path / "results")
    base = dict(
        game="pong", options={}, schedule="every", episodes=3, envs=1, surface="stack", quantize=False
    )
    rng = np.random.default_rng(0)
    for agent in ("a2c-agent", "dqn-agent"):
        for seed in (0, 1):
            clean = Cell(agent=agent, attack="none", norm=None, eps=0.0, seed=seed, **base)
            store.save(fake_record(clean, list(rng.normal(10, 2, 3)), 0))
            for norm in ("inf", "2"):
                for eps in (0.001, 0.004):
                    cell = Cell(agent=agent, attack="fgsm", norm=norm, eps=eps, seed=seed, **base)
                    store.save(fake_record(cell, list(rng.normal(10 - 1000 * eps, 2, 3)), int(eps * 1e4)))
    for source in ("a2c-agent", "dqn-agent"):
        for target in ("a2c-agent", "dqn-agent"):
            store.save_transfer(
                TransferRecord(
                    game="pong", attack="fgsm", norm="inf", eps=0.004, source=source, target=target,
                    return_mean=-5.0 if source == target else 3.0, episodes=3,
                )
            )  # fmt: skip
    return store


def test_report_writes_figures_and_a_summary_per_cell(results_dir, tmp_path) -> None:
    out = tmp_path / "report"
    written = write_report(results_dir.root, out)
    names = {p.name for p in written}
    assert names == {
        "return_vs_eps_pong.png",
        "action_change_vs_eps_pong.png",
        "transfer_pong_fgsm_Linf_eps0.004.png",
        "transfer_rate_pong_fgsm_Linf_eps0.004.png",
        "report.md",
    }
    for path in written:
        assert path.parent == out and path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes()[:4] == PNG
    markdown, transfer = (out / "report.md").read_text().split("## Transfer")
    assert len([line for line in transfer.splitlines() if line.startswith("| pong | fgsm |")]) == 4
    rows = [line for line in markdown.splitlines() if line.startswith("| pong")]
    records = results_dir.records()
    assert len(rows) == len(records) == 2 * 2 * (1 + 2 * 2)
    for record in records:
        mean, lo, hi = mean_ci([e["score"] for e in record["episodes"]])
        c = record["cell"]
        assert any(
            f"| {c['agent']} |" in row and f"| {c['seed']} |" in row and f"| {mean:.2f} |" in row
            for row in rows
        )
        assert f"[{lo:.2f}, {hi:.2f}]" in markdown
    assert "![return_vs_eps_pong](return_vs_eps_pong.png)" in markdown


def test_report_of_a_directory_without_results_exits_2(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["rlattack", "report", str(tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert "holds no finished cells" in capsys.readouterr().err


def test_a_directory_of_transfer_records_alone_gets_its_heatmaps(results_dir, tmp_path) -> None:
    transfer_only = tmp_path / "transfer-only"
    (transfer_only / "transfer").mkdir(parents=True)
    for path in results_dir.transfer.glob("*.json"):
        (transfer_only / "transfer" / path.name).write_text(path.read_text())
    written = write_report(transfer_only, tmp_path / "out")
    assert {p.name for p in written} == {
        "transfer_pong_fgsm_Linf_eps0.004.png",
        "transfer_rate_pong_fgsm_Linf_eps0.004.png",
        "report.md",
    }
    assert "| a2c-agent | dqn-agent | 3 | n/a | 3.00 ± 0.00 |" in (tmp_path / "out" / "report.md").read_text()


def test_an_attack_under_several_schedules_gets_return_against_steps_attacked(tmp_path) -> None:
    """Seeds pool by steps (a long game weighs more); another surface is another line."""
    store = ResultStore(tmp_path / "results")
    base = dict(game="pong", agent="dqn-agent", options={}, episodes=1, envs=1, quantize=False)

    def save(
        attack: str, schedule: str, seed: int, surface: str, score: float, length: int, hit: int
    ) -> None:
        norm, eps = (None, 0.0) if attack == "none" else ("inf", 0.004)
        cell = Cell(attack=attack, norm=norm, eps=eps, schedule=schedule, seed=seed, surface=surface, **base)
        games = [Episode(0, score, length, hit, hit // 2)]
        store.save({"id": cell.id, "cell": cell.model_dump(mode="json"), **Evaluation(games, 1.0).to_dict()})

    save("none", "every", 0, "stack", 20.0, 100, 0)
    save("fgsm", "every", 0, "stack", -21.0, 100, 100)
    save("fgsm", "timed:0.5", 0, "stack", -20.0, 100, 10)  # 10% of a short game
    save("fgsm", "timed:0.5", 1, "stack", -18.0, 300, 90)  # 30% of a long one
    save("fgsm", "every", 0, "frame", 5.0, 100, 100)  # the newest frame only
    save("fgsm", "timed:0.5", 0, "frame", 10.0, 100, 50)
    points = attacked_points(_games_table(store.records()))
    points = {
        line: [(x, schedule, sorted(games)) for x, schedule, games in at] for line, at in points.items()
    }
    assert points == {
        ("dqn-agent", "fgsm L-inf eps=0.004"): [
            (0.0, "clean", [20.0]),
            (25.0, "timed:0.5", [-20.0, -18.0]),  # (10 + 90) / (100 + 300) of the steps
            (100.0, "every", [-21.0]),
        ],
        ("dqn-agent", "fgsm surface=frame L-inf eps=0.004"): [
            (0.0, "clean", [20.0]),
            (50.0, "timed:0.5", [10.0]),
            (100.0, "every", [5.0]),
        ],
    }
    assert (_eps(1 / 255), _eps(4 / 255), _eps(0.004)) == ("1/255", "4/255", "0.004")  # labels
    written = write_report(store.root, tmp_path / "out")
    assert (tmp_path / "out" / "return_vs_attacked_pong.png") in written
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "![return_vs_attacked_pong](return_vs_attacked_pong.png)" in markdown
