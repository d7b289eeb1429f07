"""The report of a results directory: figures in the style of Huang et al. 2017 and a markdown summary.

Per game, one figure of mean return against eps and one of action-change rate against eps, a
panel per (norm, agent), a line per attack (and schedule); the clean score of the same agent is
each line's point at eps = 0, and a green line. eps is in gray levels (k/255) and an attack of
the robustness set goes by its name there (`pgd-margin`, not `pgd loss=margin`) in its colour and
marker, as in `robustness.png`. Where one attack ran under several schedules, a figure of return
against the share of steps attacked (Lin et al. 2017: as much damage from fewer attacked steps).
Seeds are pooled: a point is the mean of every game played at that setting, with its 95%
confidence interval (Student t) as error bar. Transfer records, where present, become one
heatmap per (game, attack, norm, eps); the summary of `rlattack robustness`, its robustness curve
and a section of `report.md` (`rlattack.robustness.verdict`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import yaml

from rlattack.attacks.base import NORMS
from rlattack.errors import UserInputError
from rlattack.files import atomic_write
from rlattack.grid.config import Cell
from rlattack.grid.markdown import NORM_NAMES, fenced, md
from rlattack.grid.store import ResultStore, TransferRecord, safe_name
from rlattack.grid.transfer_report import transfer_figures, transfer_table
from rlattack.intervals import ci_text, mean_ci
from rlattack.plots import CLEAN_STYLE, attack_style, gray_levels, plot_curve
from rlattack.robustness import verdict
from rlattack.robustness.attack_set import ATTACK_SET, name_of

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the file-only backend

NORM_ORDER = NORMS
OTHER_COLORS = ("teal", "magenta", "sienna", "slateblue", "crimson", "darkkhaki", "indigo", "lightcoral")
"""The colours of lines outside the robustness set: none of its attacks' (`ATTACK_STYLES`), nor
clean play's green, nor the worst case's black."""
EPS_AXIS = "eps (gray levels, k/255)"
LABEL_WIDTH = 40
"""Legend labels are cut to this (an ensemble's member list is long); report.md has them whole."""


def write_report(results: Path, out: Path) -> list[Path]:
    """Write the figures and `report.md` into `out`; returns the files written."""
    store = ResultStore(results)
    records = store.records()
    transfers = store.transfer_records()
    if not records and not transfers:
        raise UserInputError(
            f"{results} holds no finished cells of `rlattack run` nor records of `rlattack transfer`"
        )
    written = []
    if records:
        for game, rows in _games_table(records).groupby("game"):
            for metric in ("return", "action_change"):
                fig = figure_vs_eps(rows, metric, str(game))
                if fig is not None:
                    written.append(out / safe_name(f"{metric}_vs_eps_{game}.png"))
                    _save(fig, written[-1])
            path = out / safe_name(f"return_vs_attacked_{game}.png")
            if _plot_vs_attacked(rows, path, str(game)):
                written.append(path)
    written += transfer_figures(transfers, out)
    result = None
    if (results / verdict.RESULT).is_file():  # written by `rlattack robustness`
        result = verdict.read_verdict(results)
        written.append(out / "robustness.png")
        plot_curve(result, written[-1])
    text = _markdown(records, transfers, store, written, out, result)
    atomic_write(out / "report.md", lambda p: p.write_text(text))
    return [*written, out / "report.md"]


def _games_table(records: list[dict]) -> pd.DataFrame:
    """One row per finished cell with the pooled statistics' raw material (scores, counts)."""
    rows = []
    for r in records:
        cell, summary = r["cell"], r["summary"]
        spec = Cell(**cell).spec  # other options, surfaces or rounding: other lines
        rows.append(
            {
                "game": cell["game"],
                "agent": _agent(cell),  # sampled play: panels of its own, beside its own clean score
                "attack": cell["attack"],
                "line": spec.label(cell["schedule"], budget=False),
                "name": set_name(cell),
                "setting": spec.label(budget=False),
                "schedule": cell["schedule"],
                "norm": cell["norm"],
                "eps": cell["eps"],
                "scores": [e["score"] for e in r["episodes"]],
                "steps": summary["steps"],
                "attacked": summary["attacked_steps"],
                "changes": summary["action_change_rate"] * summary["attacked_steps"],
            }
        )
    return pd.DataFrame(rows)


def _agent(cell: dict) -> str:
    """The agent as tables and panels name it: sampled actions are marked (greedy is the default,
    and records from before `act` existed have no `act`)."""
    return cell["agent"] + (" (sampled)" if cell.get("act", "greedy") == "sample" else "")


def set_name(cell: dict) -> str | None:
    """The robustness set's name of a cell's attack (`pgd-margin`, `pgd-margin timed:0.5` under
    another schedule than every step), None for attacks outside the set and for clean play."""
    name = None if cell["attack"] == "none" else name_of(cell["attack"], cell["options"])
    if name is None or cell["schedule"] == "every":
        return name
    return f"{name} {cell['schedule']}"


def figure_vs_eps(rows: pd.DataFrame, metric: str, game: str) -> plt.Figure | None:
    """Panels per (norm, agent); None when there is nothing attacked to draw."""
    attacked = rows[rows.attack != "none"]
    if attacked.empty:
        return None
    norms = [n for n in NORM_ORDER if n in set(attacked.norm)]
    agents = sorted(set(attacked.agent))
    fig, axes = plt.subplots(
        len(norms), len(agents), figsize=(6.8 * len(agents), 3.4 * len(norms)), squeeze=False
    )
    for i, norm in enumerate(norms):
        for j, agent in enumerate(agents):
            clean = rows[(rows.agent == agent) & (rows.attack == "none")]
            panel = attacked[(attacked.agent == agent) & (attacked.norm == norm)]
            _panel(axes[i][j], panel, clean, metric)
            axes[i][j].set_title(f"{agent} · {NORM_NAMES[norm]}", fontsize=10)
    what = "return" if metric == "return" else "action-change rate"
    fig.suptitle(f"{game}: {what} vs eps")
    fig.tight_layout()
    return fig


def _save(fig: plt.Figure, path: Path) -> None:
    atomic_write(path, lambda p: fig.savefig(p, dpi=110))
    plt.close(fig)


def _panel(ax: plt.Axes, panel: pd.DataFrame, clean: pd.DataFrame, metric: str) -> None:
    """A line per attack; returns start from the clean score at eps = 0 where it was measured,
    which a green line also marks."""
    ax.set_prop_cycle(color=OTHER_COLORS)
    labels = _line_labels(panel)
    for line, points in panel.groupby("line"):
        label, style = labels[str(line)]
        if metric == "return":
            scores = [(0.0, _pooled(clean))] if not clean.empty else []
            scores += [(255 * float(eps), _pooled(at)) for eps, at in points.groupby("eps")]
            _errorbars(ax, [x for x, _ in scores], [games for _, games in scores], label, style)
        else:
            rates = [
                (255 * float(eps), 100 * at.changes.sum() / max(at.attacked.sum(), 1))
                for eps, at in points.groupby("eps")
            ]
            ax.plot(*zip(*rates, strict=True), **({"marker": "o"} | style), label=label)
    if metric == "return" and not clean.empty:
        mean = float(np.mean(_pooled(clean)))
        ax.axhline(mean, **CLEAN_STYLE, linewidth=1, label=f"clean {mean:.1f}")
    ax.set_xlabel(EPS_AXIS)
    ax.set_ylabel("game score (mean, 95% CI)" if metric == "return" else "action changed (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside: lines stay visible


def _line_labels(panel: pd.DataFrame) -> dict[str, tuple[str, dict]]:
    """Each line's label and style: an attack of the robustness set by its name, colour and
    marker, where no other line of the panel has that name (other surrogates, say)."""
    lines = panel.drop_duplicates("line")
    names = lines["name"].dropna()
    unique = set(names[~names.duplicated(keep=False)])
    found = {}
    for line, name in lines[["line", "name"]].itertuples(index=False):
        found[str(line)] = (name, attack_style(name)) if name in unique else (_short_label(line), {})
    return found


def _short_label(label: str, width: int = LABEL_WIDTH) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def attacked_points(rows: pd.DataFrame) -> dict[tuple[str, str], list[tuple[float, str, list[float]]]]:
    """Per (agent, line label) of an attack run under more than one schedule: its points as
    (percent of steps attacked, schedule, game scores), from the clean games at 0% up."""
    attacked = rows[rows.attack != "none"]
    found = {}
    for (agent, setting, norm, eps), group in attacked.groupby(["agent", "setting", "norm", "eps"]):
        if group.schedule.nunique() < 2:
            continue
        clean = rows[(rows.agent == agent) & (rows.attack == "none")]
        points = [(0.0, "clean", _pooled(clean))] if not clean.empty else []
        for schedule, at in group.groupby("schedule"):
            points.append((100 * at.attacked.sum() / max(at.steps.sum(), 1), str(schedule), _pooled(at)))
        found[(str(agent), f"{setting} {NORM_NAMES[norm]} eps={gray_levels(eps)}")] = sorted(
            points, key=lambda p: p[0]
        )
    return found


def _plot_vs_attacked(rows: pd.DataFrame, path: Path, game: str) -> bool:
    """A panel per agent, a line per attack setting, a point per schedule; False when no attack
    ran under more than one schedule."""
    lines = attacked_points(rows)
    if not lines:
        return False
    agents = sorted({agent for agent, _ in lines})
    fig, axes = plt.subplots(1, len(agents), figsize=(5.5 * len(agents), 4), squeeze=False)
    for ax, agent in zip(axes[0], agents, strict=True):
        for (owner, label), points in lines.items():
            if owner != agent:
                continue
            xs = [x for x, _, _ in points]
            ys = _errorbars(ax, xs, [scores for _, _, scores in points], label)
            for i, (x, y, (_, schedule, _)) in enumerate(zip(xs, ys, points, strict=True)):
                below = (4, -11) if i % 2 else (4, 5)  # neighbours apart: close shares stay legible
                ax.annotate(schedule, (x, y), xytext=below, textcoords="offset points", fontsize=7)
        ax.set_title(agent, fontsize=10)
        ax.set_xlabel("steps attacked (%)")
        ax.set_ylabel("game score (mean, 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{game}: return vs share of steps attacked")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110))
    plt.close(fig)
    return True


def _errorbars(
    ax: plt.Axes, xs: list[float], scores: list[list[float]], label: str, style: dict | None = None
) -> np.ndarray:
    """A line through the mean game score at each x, with its 95% CI as error bars; the means."""
    found = [mean_ci(games) for games in scores]
    ys = np.array([mean for mean, _, _ in found])
    ends = np.array([[lo, hi] for _, lo, hi in found]).T
    style = {"marker": "o"} | (style or {})
    ax.errorbar(xs, ys, yerr=np.nan_to_num(np.abs(ends - ys)), capsize=3, label=label, **style)
    return ys


def _pooled(rows: pd.DataFrame) -> list[float]:
    """Every game score of these cells (seeds pooled)."""
    return [score for scores in rows.scores for score in scores]


def _markdown(
    records: list[dict],
    transfers: list[TransferRecord],
    store: ResultStore,
    figures: list[Path],
    out: Path,
    result: dict | None,
) -> str:
    lines = [f"# Results of {md(store.root.name)}", ""]
    if records:
        info = store.run_info() or {}
        code = info.get("code", {})
        lines += [
            f"{len(records)} cells; code {md(code.get('version'))} at commit {md(code.get('commit'))}"
            + (" (with local edits)" if code.get("dirty") else "")
            + ". The grid:",
            "",
            *fenced(yaml.safe_dump(info.get("grid", {}), sort_keys=False).strip(), "yaml"),
            "",
            "std is that of the game scores (as in `rlattack eval`); the 95% CI is Student t on the mean.",
            "",
        ]
    lines += [f"![{md(p.stem)}]({p.relative_to(out)})" for p in figures] + [""]
    if result is not None:
        lines += [*verdict.markdown(result, md), ""]
    if records:
        lines += _cells_table(records)
    if transfers:
        lines += ["", "## Transfer", "", *transfer_table(transfers)]
    return "\n".join(lines) + "\n"


def _cells_table(records: list[dict]) -> list[str]:
    lines = [
        "| game | agent | attack | norm | eps | schedule | seed | games "
        "| mean | std | 95% CI | action change |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(records, key=_order):
        c, s = r["cell"], r["summary"]
        mean = s["return_mean"]
        ci = ci_text(s, digits=2)
        norm, eps = ("", "0") if c["attack"] == "none" else (NORM_NAMES[c["norm"]], gray_levels(c["eps"]))
        lines.append(
            f"| {md(c['game'])} | {md(_agent(c))} | {md(_attack_text(c))} | {norm} "
            f"| {eps} | {md(c['schedule'])} | {c['seed']} | {s['episodes']} | {mean:.2f} "
            f"| {s['return_std']:.2f} | {ci} | {s['action_change_rate']:.1%} |"
        )
    return lines


def _attack_text(cell: dict) -> str:
    """An attack as the robustness set names it, with the surrogate, EOT and (where not the
    default) ensemble members the name leaves out; others with their options."""
    name = None if cell["attack"] == "none" else name_of(cell["attack"], cell["options"])
    if name is None:
        return cell["attack"] + "".join(f" {k}={v}" for k, v in sorted(cell["options"].items()))
    kept = {k: v for k, v in cell["options"].items() if k in ("surrogate", "eot", "members")}
    if kept.get("members") == ATTACK_SET["ensemble"]["members"]:
        del kept["members"]
    return name + "".join(f" {k}={v}" for k, v in sorted(kept.items()))


def _order(record: dict) -> tuple:
    c = record["cell"]
    norm = NORM_ORDER.index(c["norm"]) if c["norm"] in NORM_ORDER else -1
    return (
        c["game"],
        _agent(c),
        c["attack"] != "none",
        c["attack"],
        norm,
        c["eps"],
        c["schedule"],
        c["seed"],
    )
