"""Learning curves of the bundled victims, one panel per game, beside the bar they are trained for.

A victim below its bar ships with the frames spent and its learning curve: this figure shows both
at a glance, and whether the curve was still rising when training stopped. A line is the mean
score of the last `window` training games (A3C and TRPO sample their actions in training, DQN
explores with epsilon); a point is the clean greedy score measured by `rlattack eval`, the score
the bar is judged on, at the victim's training frames. Markers joined by a dashed line (a cross,
then a plus, per attack) are scores under attack measured at checkpoints during training, where the
victim ships an `attacked.csv` (`frames`, `attack`, `score`: the mean return of the games played
under `attack`).
"""

from __future__ import annotations

import warnings
from itertools import cycle
from pathlib import Path

import matplotlib
import pandas as pd

from rlattack.errors import UserInputError
from rlattack.files import atomic_write
from rlattack.zoo import BARS, RANDOM_PLAY, Victim

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the file-only backend
from matplotlib.figure import Figure

FORMATS = (".png", ".pdf", ".svg")


def check_window(window: int) -> None:
    """Training games averaged per point of a learning curve: at least one."""
    if window < 1:
        raise UserInputError(f"the window must be at least one game, got {window}")


def read_table(path: Path, columns: dict[str, type], what: str) -> pd.DataFrame:
    """`columns` of the CSV file at `path`, each cast to its type; anything else is refused as not
    being `what`."""
    try:
        with warnings.catch_warnings():  # a row longer than the header: refused, not truncated
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(path, index_col=False)[list(columns)]
        if table.isna().any(axis=None):  # before the cast, which would write an empty text cell as "nan"
            raise ValueError("a row with an empty cell")
        table = table.astype(columns)
    except (
        pd.errors.ParserError,
        pd.errors.ParserWarning,
        pd.errors.EmptyDataError,
        KeyError,
        ValueError,
    ) as e:
        raise UserInputError(f"{path}: not {what} with {', '.join(columns)} columns ({e})") from None
    return table


def read_curve(path: Path, frames: int) -> pd.DataFrame:
    """The games of `curve.csv` that led to weights bundled at `frames`: those played later, and
    those of a stretch abandoned by resuming from an earlier checkpoint (frames go back), are left
    out."""
    curve = read_table(path, {"frames": float, "score": float}, "a learning curve")
    kept = curve.frames <= curve.frames[::-1].cummin()[::-1]  # no later game at fewer frames
    return curve[kept & (curve.frames <= frames)].reset_index(drop=True)


def read_attacked(path: Path, frames: int) -> pd.DataFrame:
    """The scores under attack of `attacked.csv` measured at checkpoints up to the bundled `frames`."""
    table = read_table(path, {"frames": float, "attack": str, "score": float}, "a table of attacked scores")
    return table[table.frames <= frames].reset_index(drop=True)


def training_curve(curve: pd.DataFrame, window: int) -> pd.DataFrame:
    """`frames` and `score`, the mean of the last `window` games (fewer at the start)."""
    return pd.DataFrame(
        {"frames": curve["frames"], "score": curve["score"].rolling(window, min_periods=1).mean()}
    )


def curves_figure(victims: list[Victim], window: int = 50) -> Figure:
    """One panel per game among `victims`; victims without a `curve.csv` get only their point."""
    check_window(window)
    games = [g for g in BARS if any(v.game == g for v in victims)]
    games += sorted({v.game for v in victims} - set(games))
    if not games:
        raise UserInputError("no bundled victims to draw")
    cols = min(2, len(games))
    rows = -(-len(games) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(games) :]:
        ax.remove()
    for ax, game in zip(axes.flat, games, strict=False):
        for v in (v for v in victims if v.game == game):
            path = v.path / "curve.csv"
            color = None
            if path.exists():
                line = training_curve(read_curve(path, v.frames), window)
                (drawn,) = ax.plot(line["frames"] / 1e6, line["score"], lw=1.2, label=v.name)
                color = drawn.get_color()
            attacked = v.path / "attacked.csv"
            if attacked.exists():
                series = read_attacked(attacked, v.frames).groupby("attack", sort=False)
                for marker, (attack, points) in zip(cycle("x+^"), series, strict=False):
                    ax.plot(
                        points["frames"] / 1e6,
                        points["score"],
                        ls="--",
                        marker=marker,
                        lw=0.8,
                        color=color,
                        label=f"{v.name} under {attack}",
                    )
            if v.clean_score is not None:
                ax.errorbar(
                    v.frames / 1e6,
                    v.clean_score["return_mean"],
                    yerr=v.clean_score["return_std"],
                    fmt="o",
                    color=color,
                    capsize=3,
                    label=None if color else f"{v.name} (no curve)",
                )
        if game in BARS:
            ax.axhline(BARS[game], ls="--", color="black", lw=1, label=f"bar {BARS[game]:g}")
        if game in RANDOM_PLAY:
            ax.axhline(RANDOM_PLAY[game], ls=":", color="gray", lw=1, label="random play")
        ax.set_title(game)
        ax.set_xlabel("training frames (millions)")
        ax.set_ylabel(f"score (training: mean of last {window} games)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        "Bundled victims: learning curves (lines), clean greedy score (points, ± std), under attack (dashed)"
    )
    fig.tight_layout()
    return fig


def write_curves(victims: list[Victim], path: Path, window: int = 50) -> Path:
    """Draw `curves_figure` into `path` (.png, .pdf or .svg), written whole or not at all."""
    if path.suffix.lower() not in FORMATS:
        raise UserInputError(f"{path}: the figure is written as {', '.join(FORMATS)}; got {path.suffix!r}")
    fig = curves_figure(victims, window)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:].lower(), dpi=110))
    except OSError as e:
        raise UserInputError(f"{path}: cannot write the figure ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return path
