"""Tables and plots of evaluations, for the terminal and for files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rlattack.files import atomic_write

SUMMARY_COLUMNS = (
    ("return_mean", "return", "{:.2f}"),
    ("return_std", "std", "{:.2f}"),
    ("episodes", "games", "{:d}"),
    ("action_change_rate", "action change", "{:.1%}"),
    ("target_rate", "target hit", "{:.1%}"),
    ("attacked_fraction", "attacked", "{:.0%}"),
    ("linf_mean", "L-inf", "{:.4f}"),
    ("l2_mean", "L2", "{:.3f}"),
    ("l0_mean", "L0", "{:.0f}"),
    ("steps_per_s", "steps/s", "{:.0f}"),
)


def summary_table(rows: Sequence[tuple[str, dict[str, Any]]], title: str = "") -> Table:
    """One row per (label, summary) pair, in the order given."""
    table = Table(title=title or None)
    table.add_column("setting")
    for _, header, _ in SUMMARY_COLUMNS:
        table.add_column(header, justify="right")
    for label, summary in rows:
        table.add_row(
            label,
            *("-" if summary[key] is None else fmt.format(summary[key]) for key, _, fmt in SUMMARY_COLUMNS),
        )
    return table


def percent(rate: float | None, missing: str = "-") -> str:
    """A rate for a table cell; `missing` where there is none (e.g. no targeted steps)."""
    return missing if rate is None else f"{rate:.1%}"


def print_table(table: Table) -> None:
    console = Console()
    if not console.is_terminal:  # logs and pipes: do not squeeze numbers into 80 columns
        console = Console(width=160)
    console.print(table)


def plot_comparison(rows: Sequence[tuple[str, dict[str, Any]]], path: Path, title: str) -> None:
    """Bar charts of mean return (with std) and action-change rate per setting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [label for label, _ in rows]
    fig, (ax_r, ax_c) = plt.subplots(1, 2, figsize=(max(8, 1.6 * len(rows)), 4))
    ax_r.bar(
        labels,
        [s["return_mean"] for _, s in rows],
        yerr=[s["return_std"] for _, s in rows],
        capsize=4,
        color=["tab:green"] + ["tab:red"] * (len(rows) - 1),
    )
    ax_r.axhline(0, color="black", linewidth=0.5)
    ax_r.set_ylabel("game score (mean ± std)")
    ax_c.bar(labels, [100 * s["action_change_rate"] for _, s in rows], color="tab:blue")
    ax_c.set_ylabel("action changed on attacked steps (%)")
    for ax in (ax_r, ax_c):
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=120))
    plt.close(fig)


def plot_agreement(rounds: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Held-out agreement of a substitute after each round, against the queries spent so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    queries = [r["queries"] for r in rounds]
    ax.plot(queries, [100 * r["agreement_all"] for r in rounds], "o--", label="all held-out states")
    unseen = [(r["queries"], 100 * r["agreement"]) for r in rounds if r["agreement"] is not None]
    if unseen:
        ax.plot(*zip(*unseen, strict=True), "o-", label="held-out states not in the training set")
    for r in rounds:
        ax.annotate(f"round {r['round']}", (r["queries"], 100 * r["agreement_all"]), fontsize=8)
    ax.legend(fontsize=8)
    ax.set_xlabel("queries to the target")
    ax.set_ylabel("top-1 agreement on held-out play (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=120))
    plt.close(fig)
