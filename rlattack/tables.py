"""Tables for the terminal: evaluations, the zoo, transfer matrices."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from rlattack.grid.store import TransferRecord
    from rlattack.zoo import Victim

from rlattack.intervals import summary_ci
from rlattack.observations import MAX_FRAMES
from rlattack.plots import gray_levels
from rlattack.sb3 import Q_VALUE_ALGORITHMS

CUT = f"hit the {MAX_FRAMES:,}-frame cap and were cut off there"
"""The footnote of a return marked `*`: some of its games did not end by themselves."""

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
    """One row per (label, summary) pair, in the order given. A return that counts games cut off
    at the frame cap is marked `*`, and the caption says how many games of which row."""
    table = Table(title=title or None)
    table.add_column("setting")
    for _, header, _ in SUMMARY_COLUMNS:
        table.add_column(header, justify="right")
    cut = []
    for label, summary in rows:
        cells = {
            key: "-" if summary[key] is None else fmt.format(summary[key]) for key, _, fmt in SUMMARY_COLUMNS
        }
        if games_cut(summary):
            cells["return_mean"] += "*"
            where = f" ({label})" if len(rows) > 1 else ""
            cut.append(f"{games_cut(summary)} of {summary['episodes']} games{where}")
        table.add_row(label, *cells.values())
    if cut:
        table.caption = f"* {', '.join(cut)} {CUT}"
    return table


def games_cut(summary: dict[str, Any]) -> int:
    """Games of a summary cut off at the frame cap (0 for summaries written before they were counted)."""
    return summary.get("games_cut") or 0


def percent(rate: float | None, missing: str = "-") -> str:
    """A rate for a table cell; `missing` where there is none (e.g. no targeted steps)."""
    return missing if rate is None else f"{rate:.1%}"


def print_table(table: Table, stderr: bool = False) -> None:
    """Print `table`; on standard error where standard output carries JSON (`--json -`)."""
    console = Console(stderr=stderr)
    if not console.is_terminal:  # logs and pipes: do not squeeze numbers into 80 columns
        console = Console(width=160, stderr=stderr)
    console.print(table)


def zoo_table(victims: Sequence[Victim], long: bool = False) -> Table:
    """One line per bundled victim, within 80 columns: its greedy clean score as `rlattack eval`
    measured it and its clean bar. `long` adds the game, the wall time and the sampled score;
    the notes are `zoo_notes`."""
    table = Table(title="rlattack zoo")
    columns = ("name", "algo", "frames", "clean (games)", "clean bar")
    if long:
        columns = (*columns[:2], "game", *columns[2:3], "wall time", *columns[3:4], "sampled", *columns[4:])
    for column in columns:
        table.add_column(
            column, no_wrap=True, justify="right" if column in ("frames", "wall time") else "left"
        )

    def shown(s: dict[str, Any] | None, missing: str) -> str:
        if s is None:
            return missing
        return f"{s['return_mean']:.1f} ± {s['return_std']:.1f} ({s['episodes']})"

    for v in victims:
        met = {True: "met", False: "[bold red]below[/]", None: "?"}[v.meets_bar]
        row = {
            "name": v.name,
            "algo": v.algorithm,
            "game": v.game,
            "frames": f"{v.frames / 1e6:.1f}M",
            "wall time": "?"
            if v.meta.get("wall_seconds") is None
            else f"{v.meta['wall_seconds'] / 3600:.1f} h",
            "clean (games)": shown(v.clean_score, "not measured"),
            "sampled": shown(
                v.clean_score_sampled, "greedy only" if v.algorithm in Q_VALUE_ALGORITHMS else "not measured"
            ),
            "clean bar": "" if v.bar is None else f"{v.bar:g} {met}",
        }
        table.add_row(*(row[c] for c in columns))
    table.caption = robustness_bars(victims)
    table.caption_justify = "left"
    return table


def robustness_bars(victims: Sequence[Victim]) -> str | None:
    """The zoo table's caption: what the clean bar is, and each defended victim's robustness bar
    (its measured worst case at 1/255 against the bar), one line each; a caption, so the table
    stays within 80 columns."""
    from rlattack.zoo import ROBUSTNESS_EPS

    defended = [v for v in victims if v.robustness_bar is not None]
    if not defended:
        return None
    lines = [
        "clean bar: judged on the greedy clean score",
        f"robustness bar: judged on the worst case at {ROBUSTNESS_EPS * 255:g}/255 (experiments/robustness)",
    ]
    for v in defended:
        met = {True: "met", False: "[bold red]below[/]", None: "not measured"}[v.meets_robustness_bar]
        worst = "" if v.worst_case is None else f" ({v.worst_case:+.1f})"
        lines.append(f"  {v.name}: {v.robustness_bar:+g} {met}{worst}")
    return "\n".join(lines)


def zoo_notes(victims: Sequence[Victim]) -> str:
    """Each victim's note (its history is in agents/zoo/NAME/NOTES.md), one paragraph each."""
    return "\n\n".join(
        f"{v.name}: {v.meta.get('note') or '(no note)'} (agents/zoo/{v.name}/NOTES.md)" for v in victims
    )


def transfer_summary(records: Sequence[TransferRecord], title: str) -> Table:
    """One row per (source, victim) pair: the victim's clean and attacked return, the transfer rate."""
    table = Table(title=title)
    for column in ("source", "victim", "clean", "attacked", "transfer rate", "source success", "target hit"):
        table.add_column(column, justify="left" if column in ("source", "victim") else "right")
    for r in records:
        table.add_row(
            r.source,
            r.target,
            "-" if r.clean_return is None else f"{r.clean_return:.2f}",
            f"{r.return_mean:.2f} ± {r.return_std:.2f}",
            percent(r.action_change_rate),
            percent(r.source_success_rate),
            percent(r.target_rate),
        )
    return table


def robustness_table(result: dict[str, Any]) -> Table:
    """Per eps: each attack's mean return with its 95% interval, the worst case with every attack
    that reaches it, and the certified action rate with its method; the caption holds the area
    with its grid, the smallest eps that breaks the agent, the certificates' radii and the
    evidence warnings."""
    names = list(dict.fromkeys(name for row in result["eps"] for name in row["attacks"]))

    def returned(summary: dict[str, Any]) -> str:
        cut = "*" if games_cut(summary) else ""
        lo, hi = summary_ci(summary)
        ci = (
            f"[{lo:.1f}, {hi:.1f}]"
            if not math.isnan(lo)
            else "(1 game)"
            if summary["episodes"] < 2
            else "(alike)"
        )
        return f"{summary['return_mean']:.2f}{cut} {ci}"

    cut = games_cut(result["clean"]) + sum(
        games_cut(s) for row in result["eps"] for s in row["attacks"].values()
    )
    clean = result["clean"]
    method = result.get("certify", {}).get("method", "ibp")
    table = Table(
        title=f"{result['agent']} on {result['game']}: clean {returned(clean)}; "
        f"mean return [95% t-interval] over {clean['episodes']} game{'s' * (clean['episodes'] != 1)} each "
        "(alike: every game scored the same, no interval)"
    )
    for column in ("eps", *names, "worst case", f"certified ({method})"):
        table.add_column(column, justify="right")
    for row in result["eps"]:
        cells = [returned(row["attacks"][n]) if n in row["attacks"] else "-" for n in names]
        worst = row["worst_case"]
        tied = ", ".join(worst.get("attacks_tied") or [worst["attack"]])
        mark = "" if row.get("listed", True) else " °"
        table.add_row(
            gray_levels(row["eps"]) + mark,
            *cells,
            f"{worst['return_mean']:.2f} ({tied})",
            percent(row["certified_action_rate"]),
        )
    table.caption = "; ".join(robustness_caption(result)) + (f"; * {cut} games {CUT}" if cut else "")
    return table


def robustness_caption(result: dict[str, Any]) -> list[str]:
    """The lines under the robustness table: the area and its grid, the smallest eps, the marks,
    the certificates, and what the figures rest on."""
    grid = result.get("auc_grid") or [r["eps"] for r in result["eps"]]
    area = "n/a" if result["auc"] is None else f"{result['auc']:.3f}"
    lines = [f"area under the curve {area} over eps {', '.join(gray_levels(e) for e in grid)}"]
    if result.get("auc_at_floor"):
        lines[0] += " (the grid's floor: broken at every listed eps; compare the eps that breaks it)"
    lines.append(f"smallest eps that breaks it: {result.get('min_eps_text') or 'not searched (--find-eps)'}")
    if any(not r.get("listed", True) for r in result["eps"]):
        lines.append(
            "° measured, not in this run's --eps (a search point or an earlier run's); not in the area"
        )
    certify = result.get("certify", {})
    radius = certify.get("radius")
    if radius:
        cap = f", capped at {gray_levels(radius['cap'])}" if "cap" in radius else ""
        lines.append(
            f"certified radius per state ({certify['method']}): median {gray_levels(radius['median'])}, "
            f"quartiles {gray_levels(radius['q25'])} to {gray_levels(radius['q75'])}{cap}"
        )
    if certify.get("smoothed_clean_return") is not None:
        smoothed = certify["smoothed_clean_return"]
        lines.append(f"the smoothed policy (sigma {certify['sigma']:g}) plays {smoothed:.2f} clean")
    lines += result.get("evidence", [])
    return lines
