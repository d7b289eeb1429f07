"""Figures of single runs: clean against attacked play (`compare`), a substitute's agreement, a
robustness curve."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlattack.files import atomic_write

CLEAN_STYLE = {"color": "tab:green", "linestyle": "--"}
WORST_STYLE = {"color": "black", "linewidth": 2.5}
ATTACK_STYLES: dict[str, dict[str, Any]] = {
    name: {"color": color, "marker": marker}
    for name, color, marker in (
        ("apgd-ce", "tab:red", "o"),
        ("apgd-dlr", "tab:orange", "s"),
        ("square", "tab:purple", "^"),
        ("transfer", "tab:brown", "v"),
        ("noise", "tab:gray", "D"),
        ("ensemble", "tab:blue", "P"),
        ("pgd", "tab:pink", "X"),
        ("pgd-margin", "tab:olive", "<"),
        ("momentum", "tab:cyan", ">"),
        ("mad", "gold", "h"),
        ("fgsm", "darkblue", "*"),
    )
}
"""One colour and marker per attack of the robustness set, in every figure that draws it. Green
is clean play's and black the worst case's, so no attack takes them; each attack also has its own
marker, so lines that tie stay apart."""


def attack_style(name: str) -> dict[str, Any]:
    """An attack's colour and marker; names outside the set (other grids' labels) get none, so
    matplotlib's cycle picks."""
    return dict(ATTACK_STYLES.get(name, {}))


def gray_levels(eps: float) -> str:
    """An eps as gray levels, the unit of every axis and table: "1/255", "0.25/255"."""
    return f"{eps * 255:.3g}/255"


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


def plot_curve(result: dict[str, Any], path: Path) -> None:
    """One line per attack through every eps it was measured at (a search's points too), the
    worst-case envelope, the clean score, random play, the threshold and the bracket in which
    the agent breaks. Tied attacks draw concentric hollow markers, the first one largest, so none
    hides under another."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(result["eps"], key=lambda row: row["eps"])
    xs = [0.0] + [row["eps"] * 255 for row in rows]
    clean = result["clean"]["return_mean"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = list(dict.fromkeys(name for row in rows for name in row["attacks"]))
    for i, name in enumerate(names):
        ys = [clean] + [row["attacks"].get(name, {}).get("return_mean", np.nan) for row in rows]
        style = attack_style(name) | {"markersize": max(3.0, 11.0 - 1.6 * i), "markerfacecolor": "none"}
        ax.plot(xs, ys, linewidth=1, alpha=0.85, label=name, **({"marker": "o"} | style))
    worst = [clean] + [row["worst_case"]["return_mean"] for row in rows]
    ax.plot(xs, worst, label="worst case", **WORST_STYLE)
    ax.axhline(clean, linewidth=1, label=f"clean {clean:.1f}", **CLEAN_STYLE)
    if result.get("random_return") is not None:
        ax.axhline(
            result["random_return"],
            color="gray",
            linestyle=":",
            label=f"random play {result['random_return']:.1f}",
        )
    bracket = result.get("min_eps_bracket")
    if bracket is not None:
        ax.axhline(result["threshold"], color="tab:red", linestyle=":", linewidth=1, label="threshold")
        low, high = bracket[0] * 255, bracket[1] * 255
        ax.axvspan(low, high, color="tab:red", alpha=0.2, label=f"breaks: {result.get('min_eps_text', '')}")
        ax.axvline(high, color="tab:red", linestyle="-.", linewidth=1)
    grid = result.get("auc_grid") or [row["eps"] for row in rows]
    score = "n/a" if result.get("auc") is None else f"{result['auc']:.2f}"
    score += f" over {', '.join(map(gray_levels, grid))}"
    score += ", the grid's floor" if result.get("auc_at_floor") else ""
    ax.set_title(f"{result['agent']} on {result['game']}: area {score}", fontsize=10)
    ax.set_xlabel("eps (gray levels, L-inf: k means k/255)")
    ax.set_ylabel(f"mean game score ({result['clean']['episodes']} games)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110))
    plt.close(fig)
