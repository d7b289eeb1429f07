"""The report of a small results directory: its figures, its markdown, its statistics."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pytest
from matplotlib.colors import to_hex

from rlattack.cli import main
from rlattack.grid import Cell
from rlattack.grid.report import _games_table, attacked_points, figure_vs_eps, write_report
from rlattack.grid.store import ResultStore, TransferRecord
from rlattack.intervals import ci_text, mean_ci
from rlattack.plots import ATTACK_STYLES
from rlattack.rollout.evaluate import Episode, Evaluation

PNG = b"\x89PNG"


def fake_record(cell: Cell, scores: list[float], changes: int) -> dict:
    """What `run_cell` stores, for games with the given scores (100 steps, all attacked)."""
    attacked = 0 if cell.attack == "none" else 100
    games = [Episode(0, s, 100, attacked, changes if attacked else 0) for s in scores]
    return {"id": cell.id, "cell": cell.model_dump(mode="json"), **Evaluation(games, wall_s=1.0).to_dict()}


def summary(mean: float, std: float = 0.0, games: int = 5) -> dict[str, Any]:
    """An evaluation summary as robustness.json holds it (the fields reports read)."""
    return {"return_mean": mean, "return_std": std, "episodes": games, "action_change_rate": 0.5}


def verdict(agent: str, worst: dict[float, dict[str, float]], **extra: Any) -> dict[str, Any]:
    """A robustness.json of `rlattack robustness` from before `attacks_tied`, `listed` and
    `auc_grid` existed: per eps each attack's mean return; `extra` adds or replaces keys."""
    rows = []
    for eps, means in worst.items():
        name = min(means, key=means.get)
        rows.append(
            {
                "eps": eps,
                "attacks": {n: summary(m, std=1.0) for n, m in means.items()},
                "worst_case": {"attack": name, "return_mean": means[name]},
                "certified_action_rate": 0.0,
            }
        )
    return {
        "agent": agent,
        "game": "pong",
        "reliable": True,
        "checks": [{"name": "gradients", "passed": True, "detail": ""}],
        "clean": summary(18.0, std=1.0, games=10),
        "eps": rows,
        "auc": 0.25,
        "min_eps": None,
        "random_return": -20.7,
        "threshold": -1.35,
        "certify": {"method": "ibp", "states": 500, "every": 8},
        "search": None,
    } | extra


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
        ("dqn-agent", "fgsm L-inf eps=1.02/255"): [
            (0.0, "clean", [20.0]),
            (25.0, "timed:0.5", [-20.0, -18.0]),  # (10 + 90) / (100 + 300) of the steps
            (100.0, "every", [-21.0]),
        ],
        ("dqn-agent", "fgsm surface=frame L-inf eps=1.02/255"): [
            (0.0, "clean", [20.0]),
            (50.0, "timed:0.5", [10.0]),
            (100.0, "every", [5.0]),
        ],
    }
    written = write_report(store.root, tmp_path / "out")
    assert (tmp_path / "out" / "return_vs_attacked_pong.png") in written
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "![return_vs_attacked_pong](return_vs_attacked_pong.png)" in markdown


def test_figures_put_eps_in_gray_levels_and_name_and_colour_the_sets_attacks(tmp_path) -> None:
    """As robustness.png draws them: `pgd-margin` (not `pgd loss=margin`) in its own colour and
    marker, clean play green, and an attack outside the set in no colour of the set's nor green."""
    store = ResultStore(tmp_path / "results")
    base = dict(game="pong", agent="dqn-agent", schedule="every", episodes=2, envs=1, seed=0, surface="stack")
    base |= {"quantize": False}
    store.save(fake_record(Cell(attack="none", norm=None, eps=0.0, options={}, **base), [20.0, 18.0], 0))
    for attack, options in [
        ("apgd", {"steps": 10, "loss": "ce"}),
        ("pgd", {"steps": 10, "loss": "margin"}),
        ("pgd", {"steps": 20}),
    ]:
        for eps in (1 / 255, 3 / 255):
            cell = Cell(attack=attack, norm="inf", eps=eps, options=options, **base)
            store.save(fake_record(cell, [-21.0, -19.0], 50))
    rows = _games_table(store.records())
    for metric in ("return", "action_change"):
        ax = figure_vs_eps(rows, metric, "pong").axes[0]
        handles, labels = ax.get_legend_handles_labels()
        lines = {
            label: getattr(handle, "lines", [handle])[0]
            for handle, label in zip(handles, labels, strict=True)
        }
        attacks = {"apgd-ce", "pgd-margin", "pgd steps=20"}
        assert set(lines) == attacks | ({"clean 19.0"} if metric == "return" else set())
        for name in ("apgd-ce", "pgd-margin"):
            assert to_hex(lines[name].get_color()) == to_hex(ATTACK_STYLES[name]["color"])
            assert lines[name].get_marker() == ATTACK_STYLES[name]["marker"]
        set_colours = {to_hex(style["color"]) for style in ATTACK_STYLES.values()}
        other = to_hex(lines["pgd steps=20"].get_color())
        assert other not in set_colours | {to_hex("tab:green"), to_hex("black")}
        assert all(to_hex(lines[name].get_color()) != to_hex("tab:green") for name in attacks)
        xs = [0.0, 1.0, 3.0] if metric == "return" else [1.0, 3.0]  # clean at 0, then k/255
        assert np.allclose(lines["pgd-margin"].get_xdata(), xs)
        assert ax.get_xlabel() == "eps (gray levels, k/255)"
        if metric == "return":
            assert to_hex(lines["clean 19.0"].get_color()) == to_hex("tab:green")
    markdown = write_report(store.root, tmp_path / "out")[-1].read_text()
    assert "| pong | dqn-agent | pgd-margin | L-inf | 3/255 | every |" in markdown


def test_the_report_of_a_robustness_directory_says_what_its_verdict_measured(results_dir, tmp_path) -> None:
    """Ties, the certificate's method, the area's grid, the search's answer and each mean's games
    and CI; an old robustness.json (no `attacks_tied`, `auc_grid`) gets its ties computed."""
    old = verdict("dqn-agent", {1 / 255: {"apgd-ce": -21.0, "square": -21.0, "noise": 17.0}})
    old["clean"] = summary(18.0, games=2)
    (results_dir.root / "robustness.json").write_text(json.dumps(old))
    write_report(results_dir.root, tmp_path / "old")
    markdown = (tmp_path / "old" / "report.md").read_text()
    assert (
        "## Robustness" in markdown
        and "| eps | worst case | attacks at the minimum | certified (ibp) |" in markdown
    )
    worst = ci_text(old["eps"][0]["attacks"]["apgd-ce"])
    assert f"| 1/255 | -21.00 (5 games, 95% CI {worst}) | apgd-ce, square | 0.0% |" in markdown
    assert "- warning: clean play rests on 2 games (fewer than 5)" in markdown
    assert "- warning: clean play: all 2 games scored 18, so they give no spread" in markdown
    assert "Area under the worst-case curve: 0.250 over eps 1/255;" in markdown
    assert f"| 1/255 | noise | 17.00 | 5 | {ci_text(summary(17.0, 1.0))} | 50.0% |" in markdown
    new = verdict(
        "dqn-agent",
        {1 / 255: {"apgd-ce": 10.0, "square": 12.0}, 0.5 / 255: {"apgd-ce": 17.0}},
        auc_grid=[1 / 255, 3 / 255],
        auc_at_floor=True,
        min_eps=0.5 / 255,
        min_eps_text="between 0.25/255 and 0.5/255",
        certify={
            "method": "smoothing",
            "sigma": 0.25,
            "smoothed_clean_return": 15.0,
            "radius": {"q25": 0.0, "median": 0.25 / 255, "q75": 0.5 / 255},
        },
    )
    new["eps"][0]["worst_case"]["attacks_tied"] = ["apgd-ce", "ensemble"]
    new["eps"][1] |= {"listed": False, "searched": True}
    (results_dir.root / "robustness.json").write_text(json.dumps(new))
    write_report(results_dir.root, tmp_path / "new")
    markdown = (tmp_path / "new" / "report.md").read_text()
    tied = f"| 1/255 | 10.00 (5 games, 95% CI {ci_text(summary(10.0, 1.0))}) | apgd-ce, ensemble | 0.0% |"
    assert tied in markdown
    assert "| 0.5/255 (searched) | 17.00 " in markdown and "certified (smoothing) |" in markdown
    assert "0.250 over eps 1/255, 3/255 (at the grid's floor" in markdown
    assert "Smallest eps that breaks it: between 0.25/255 and 0.5/255." in markdown
    assert "The smoothed policy's own clean return: 15.00." in markdown
    assert "Certified radius per state (smoothing): median 0.25/255, quartiles 0/255 to 0.5/255." in markdown
    assert "warning" not in markdown
