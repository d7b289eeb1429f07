"""The transfer part of a report: heatmaps per (game, attack, norm, eps) and the markdown table of
every (source, target) pair."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

from rlattack.files import atomic_write
from rlattack.grid.markdown import NORM_NAMES, md
from rlattack.grid.store import TransferRecord, safe_name
from rlattack.plots import gray_levels
from rlattack.tables import percent

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the file-only backend


def transfer_figures(records: list[TransferRecord], out: Path) -> list[Path]:
    """Two heatmaps per (game, attack, norm, eps, target rule): the target's return, the transfer rate."""
    groups: dict[str, list[TransferRecord]] = {}
    for r in records:
        rule = f"_to-{r.target_rule}" if r.target_rule else ""
        rule += "_sampled" if r.act == "sample" else ""  # its own matrix: a pair may be in both
        groups.setdefault(safe_name(f"{r.game}_{r.attack}_L{r.norm}_eps{r.eps:g}{rule}"), []).append(r)
    written = []
    for key, rows in groups.items():
        for metric, prefix in (("return_mean", "transfer"), ("action_change_rate", "transfer_rate")):
            path = out / f"{prefix}_{key}.png"
            _plot_transfer(rows, metric, path)
            written.append(path)
    return written


TRANSFER_METRICS = {
    "return_mean": ("target's mean return", "{:.1f}"),
    "action_change_rate": ("transfer rate (target's action changed)", "{:.0%}"),
}


def _plot_transfer(records: list[TransferRecord], metric: str, path: Path) -> None:
    """Rows: where the examples were crafted; columns: the agent that saw them."""
    sources = sorted({r.source for r in records})
    targets = sorted({r.target for r in records})
    grid = np.full((len(sources), len(targets)), np.nan)
    for r in records:
        value = getattr(r, metric)
        grid[sources.index(r.source), targets.index(r.target)] = np.nan if value is None else value
    label, fmt = TRANSFER_METRICS[metric]
    rows, columns = [_short(s) for s in sources], [_short(t) for t in targets]
    width = 1.6 * len(targets) + 0.08 * max(map(len, rows)) + 3  # room for the row labels
    fig, ax = plt.subplots(figsize=(width, 1.2 * len(sources) + 0.06 * max(map(len, columns)) + 2))
    image = ax.imshow(grid, cmap="viridis")
    ax.set_xticks(range(len(targets)), columns, rotation=30, ha="right")
    ax.set_yticks(range(len(sources)), rows)
    ax.set_xlabel("target (evaluated)")
    ax.set_ylabel("source (crafted on)")
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            bright = image.norm(value) > 0.6  # viridis turns yellow: dark text there
            color = "black" if bright else "white"
            ax.text(j, i, fmt.format(value), ha="center", va="center", color=color, fontsize=9)
    fig.colorbar(image, ax=ax, label=label)
    r = records[0]
    rule = f", target rule {r.target_rule}" if r.target_rule else ""
    rule += ", targets' actions sampled" if r.act == "sample" else ""
    eps = gray_levels(r.eps)
    ax.set_title(f"{r.game}: {r.attack} {NORM_NAMES.get(r.norm, r.norm)} eps={eps} transfer{rule}")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110))
    plt.close(fig)


def _short(agent: str) -> str:
    """An axis label: a file agent (sb3:, torch:) by its last folder and file name only."""
    kind, _, path = agent.rpartition(":")
    parts = Path(path).parts
    return agent if len(parts) < 3 else f"{kind}:…/{'/'.join(parts[-2:])}"


def transfer_table(records: list[TransferRecord]) -> list[str]:
    """Markdown rows: per pair the target's clean and attacked return, transfer and source success."""
    lines = [
        "| game | attack | norm | eps | target rule | source | target | games | clean | attacked "
        "| transfer rate | source success | target hit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    for r in sorted(
        records,
        key=lambda r: (r.game, r.attack, r.norm, r.eps, r.target_rule or "", r.act, r.source, r.target),
    ):
        target = r.target + (" (sampled)" if r.act == "sample" else "")
        clean = "n/a" if r.clean_return is None else f"{r.clean_return:.2f}"
        lines.append(
            f"| {md(r.game)} | {md(r.attack)} | {md(NORM_NAMES.get(r.norm, r.norm))} | {gray_levels(r.eps)} "
            f"| {md(r.target_rule or '-')} | {md(r.source)} | {md(target)} | {r.episodes} | {clean} "
            f"| {r.return_mean:.2f} ± {r.return_std:.2f} "
            f"| {percent(r.action_change_rate, 'n/a')} | {percent(r.source_success_rate, 'n/a')} "
            f"| {percent(r.target_rate, 'n/a')} |"
        )
    return lines
