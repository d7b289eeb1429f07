"""`rlattack report DIR1 DIR2 ...`: the robustness verdicts of several agents side by side.

What a user does with two models: their worst-case curves on one axis (eps in gray levels, each
agent's clean score at 0, one colour per agent), and a table of what each verdict measured
(`rlattack.robustness.verdict`): clean mean with its games and CI, worst case per eps with every attack
tied at it, certified rate with its method, area with its eps grid. Areas over different grids
are not comparable, and the comparison says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
from rich.table import Table

from rlattack.files import atomic_write
from rlattack.grid.markdown import md
from rlattack.plots import gray_levels
from rlattack.robustness import verdict

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the file-only backend

AGENT_COLORS = ("tab:blue", "tab:red", "tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:cyan")
"""One colour per agent; none is clean play's green or the worst case's black."""
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
FIGURE = "robustness_compare.png"


@dataclass(frozen=True)
class Verdict:
    """One directory's verdict and the name the comparison gives it."""

    label: str
    directory: Path
    result: dict[str, Any]


def read_verdicts(directories: list[Path]) -> list[Verdict]:
    """Each directory's verdict (one line naming the first that has none), labelled by its agent,
    and by its directory too where two verdicts are of one agent."""
    results = [verdict.read_verdict(d) for d in directories]
    agents = [r["agent"] for r in results]
    return [
        Verdict(r["agent"] if agents.count(r["agent"]) == 1 else f"{r['agent']} ({d})", d, r)
        for d, r in zip(directories, results, strict=True)
    ]


def grid_note(verdicts: list[Verdict]) -> str | None:
    """One line where the areas were computed over different eps grids; None where they agree."""
    grids = {v.label: verdict.area_grid(v.result) for v in verdicts}
    if len({tuple(round(e * 255, 6) for e in g) for g in grids.values()}) < 2:
        return None
    each = "; ".join(f"{label}: {verdict.grid_text(g) or 'none'}" for label, g in grids.items())
    return f"the areas are not comparable: they were computed over different eps grids ({each})"


def rows(verdicts: list[Verdict]) -> list[tuple[str, list[str]]]:
    """The table's rows, a measure each, a cell per agent: what the terminal and compare.md show."""
    budgets = sorted({row["eps"] for v in verdicts for row in verdict.listed(v.result)})
    found = [
        ("game", [v.result["game"] for v in verdicts]),
        ("clean", [verdict.mean_text(v.result["clean"]) for v in verdicts]),
    ]
    for eps in budgets:
        at = [_row_at(v.result, eps) for v in verdicts]
        found.append((f"worst case at {gray_levels(eps)}", [_worst(row) for row in at]))
        found.append(
            (
                f"certified at {gray_levels(eps)}",
                [
                    "-" if row is None else f"{verdict.certified_text(row)} ({verdict.method(v.result)})"
                    for v, row in zip(verdicts, at, strict=True)
                ],
            )
        )
    found += [
        ("area", [verdict.area_text(v.result) for v in verdicts]),
        ("smallest eps that breaks it", [verdict.smallest_text(v.result) for v in verdicts]),
        ("checks", [verdict.checks_text(v.result) for v in verdicts]),
    ]
    return found


def _row_at(result: dict[str, Any], eps: float) -> dict[str, Any] | None:
    return next((row for row in result["eps"] if abs(row["eps"] - eps) < 1e-12), None)


def _worst(row: dict[str, Any] | None) -> str:
    """The worst case with its evidence and every attack tied at it."""
    if row is None:
        return "not measured"
    return f"{verdict.mean_text(verdict.worst_summary(row))}: {', '.join(verdict.tied(row))}"


def notes(verdicts: list[Verdict]) -> list[str]:
    """The lines below the table: differing grids, and the clean baselines too thin to trust."""
    found = [note] if (note := grid_note(verdicts)) else []
    return found + [w for v in verdicts for w in verdict.warnings(v.result, f"{v.label}'s clean play")]


def compare_table(verdicts: list[Verdict]) -> Table:
    """The side-by-side table for the terminal, its notes as the caption."""
    table = Table(title="robustness verdicts (L-inf; means with their games and 95% CI)")
    table.add_column("")
    for v in verdicts:
        table.add_column(v.label)
    for measure, cells in rows(verdicts):
        table.add_row(measure, *cells)
    table.caption = "\n".join(notes(verdicts)) or None
    return table


def compare_markdown(verdicts: list[Verdict], figure: Path) -> str:
    """compare.md: where each verdict comes from, the figure, the table and its notes."""
    lines = ["# Robustness verdicts compared", ""]
    lines += [f"- {md(v.label)}: {md(v.directory / verdict.RESULT)}" for v in verdicts]
    lines += ["", f"![robustness curves]({figure.name})", ""]
    lines += ["| | " + " | ".join(md(v.label) for v in verdicts) + " |"]
    lines += ["|---" * (len(verdicts) + 1) + "|"]
    lines += [f"| {md(m)} | " + " | ".join(md(c) for c in cells) + " |" for m, cells in rows(verdicts)]
    lines += ["", *[f"- {md(n)}" for n in notes(verdicts)]]
    return "\n".join(lines).rstrip() + "\n"


def plot_verdicts(verdicts: list[Verdict], path: Path) -> None:
    """Each agent's worst case against eps through every eps it measured, from its clean score."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, v in enumerate(verdicts):
        measured = sorted(v.result["eps"], key=lambda row: row["eps"])
        xs = [0.0] + [255 * row["eps"] for row in measured]
        ys = [v.result["clean"]["return_mean"]] + [row["worst_case"]["return_mean"] for row in measured]
        color, marker = AGENT_COLORS[i % len(AGENT_COLORS)], MARKERS[i % len(MARKERS)]
        label = f"{v.label} (area {verdict.area_text(v.result)})"
        ax.plot(xs, ys, color=color, marker=marker, linewidth=2, label=label)
    for random in sorted(
        {v.result["random_return"] for v in verdicts if v.result.get("random_return") is not None}
    ):
        ax.axhline(random, color="gray", linestyle=":", label=f"random play {random:.1f}")
    ax.set_title("worst case over each agent's attack set (clean at eps 0)")
    ax.set_xlabel("eps (gray levels, k/255, L-inf)")
    ax.set_ylabel("worst-case mean game score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110))
    plt.close(fig)


def write_comparison(directories: list[Path], out: Path) -> tuple[Table, list[Path]]:
    """The figure and compare.md in `out`, from each directory's robustness.json; the table for
    the terminal and the files written."""
    verdicts = read_verdicts(directories)
    figure, text = out / FIGURE, out / "compare.md"
    plot_verdicts(verdicts, figure)
    atomic_write(text, lambda p: p.write_text(compare_markdown(verdicts, figure)))
    return compare_table(verdicts), [figure, text]
