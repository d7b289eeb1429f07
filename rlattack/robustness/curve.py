"""The robustness curve: return against eps per attack and their worst case, and its area.

The area is a score in [0, 1]: the mean over [0, eps_max] of (worst-case return - random play) /
(clean - random play), by the trapezoid rule through the measured eps (the clean return at 0),
each point clipped to [0, 1]. 1: no attack of the set costs anything; 0: random play from the
smallest eps on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlattack.files import atomic_write


def area(eps: list[float], worst: list[float], clean: float, random: float) -> float | None:
    """The normalised area under the worst-case curve; None where clean play is no better than random."""
    if not clean > random or not eps:
        return None
    xs = np.array([0.0, *eps])
    ys = np.clip((np.array([clean, *worst]) - random) / (clean - random), 0.0, 1.0)
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    trapezoids = np.diff(xs) * (ys[1:] + ys[:-1]) / 2
    return float(trapezoids.sum() / xs[-1]) if xs[-1] > 0 else None


def plot_curve(result: dict[str, Any], path: Path) -> None:
    """One line per attack, the worst-case envelope, the clean score and random play."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(result["eps"], key=lambda row: row["eps"])
    xs = [0.0] + [row["eps"] * 255 for row in rows]
    clean = result["clean"]["return_mean"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in dict.fromkeys(name for row in rows for name in row["attacks"]):
        ys = [clean] + [row["attacks"].get(name, {}).get("return_mean", np.nan) for row in rows]
        ax.plot(xs, ys, marker="o", linewidth=1, alpha=0.8, label=name)
    worst = [clean] + [row["worst_case"]["return_mean"] for row in rows]
    ax.plot(xs, worst, color="black", linewidth=2.5, label="worst case")
    ax.axhline(clean, color="tab:green", linestyle="--", linewidth=1, label=f"clean {clean:.1f}")
    if result.get("random_return") is not None:
        ax.axhline(
            result["random_return"],
            color="gray",
            linestyle=":",
            label=f"random play {result['random_return']:.1f}",
        )
    if result.get("min_eps") is not None:
        ax.axvline(
            result["min_eps"] * 255, color="tab:red", linestyle="-.", label="smallest eps that breaks it"
        )
    score = "n/a" if result.get("auc") is None else f"{result['auc']:.2f}"
    ax.set_title(f"{result['agent']} on {result['game']}: robustness curve (area {score})")
    ax.set_xlabel("eps (gray levels, L-inf)")
    ax.set_ylabel("mean game score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110))
    plt.close(fig)
