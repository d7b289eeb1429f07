"""A robustness verdict (the `robustness.json` of `rlattack robustness`) as reports print it.

Every number says what it measured: the worst case names every attack tied at the minimum (which
of tied attacks a `min` picks is an accident of order), the certified rate its method, the area
its eps grid (areas over other grids are not comparable), and each mean its game count and 95% CI
(`rlattack.intervals`). Files written before a key existed are read too: what they lack
(`attacks_tied`, `listed`, `auc_grid`, `min_eps_text`) is computed from what they hold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlattack.errors import UserInputError
from rlattack.intervals import ci_text, evidence_warnings, summary_ci
from rlattack.plots import gray_levels
from rlattack.tables import percent

RESULT = "robustness.json"
"""The file `rlattack robustness` writes into its results directory."""
NEEDED = ("agent", "game", "clean", "eps", "auc")
"""Keys every verdict has had."""


def read_verdict(directory: Path) -> dict[str, Any]:
    """The verdict in `directory`; one line naming the directory where there is none or it is
    not one."""
    path = directory / RESULT
    if not path.is_file():
        raise UserInputError(f"{directory} holds no {RESULT} (written by `rlattack robustness --out DIR`)")
    try:
        result = json.loads(path.read_text())
    except ValueError as e:
        raise UserInputError(f"{path} is not JSON: {e}") from None
    missing = [k for k in NEEDED if k not in result] if isinstance(result, dict) else NEEDED
    if missing:
        raise UserInputError(f"{path} is not a robustness verdict: it lacks {', '.join(missing)}")
    return result


def tied(row: dict[str, Any]) -> list[str]:
    """Every attack at the worst case's return at this eps, as the file lists them or, in files
    without `attacks_tied`, every attack whose mean equals the minimum."""
    worst = row["worst_case"]
    if worst.get("attacks_tied"):
        return list(worst["attacks_tied"])
    low = worst["return_mean"]
    found = [n for n, s in row["attacks"].items() if math.isclose(s["return_mean"], low, abs_tol=1e-9)]
    return found or [worst["attack"]]


def listed(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the eps the user listed (not those only a `--find-eps` search measured)."""
    return [row for row in result["eps"] if row.get("listed", True)]


def area_grid(result: dict[str, Any]) -> list[float]:
    """The eps above 0 the area was computed over: the file's `auc_grid`, else the listed eps
    (the clean return at 0 is always its first point)."""
    grid = result.get("auc_grid") or [row["eps"] for row in listed(result)]
    return sorted(e for e in grid if e > 0)


def grid_text(grid: list[float]) -> str:
    return ", ".join(gray_levels(e) for e in grid)


def area_text(result: dict[str, Any]) -> str:
    """The area with its grid: "0.178 over eps 1/255, 3/255", flagged where it sits at the
    grid's floor."""
    if result.get("auc") is None:
        return "n/a (clean play no better than random)"
    floor = " (at the grid's floor: the eps that breaks it says more)" if result.get("auc_at_floor") else ""
    return f"{result['auc']:.3f} over eps {grid_text(area_grid(result))}{floor}"


def method(result: dict[str, Any]) -> str:
    """The certificate's method (ibp, smoothing, none)."""
    return (result.get("certify") or {}).get("method", "ibp")


def certified_text(row: dict[str, Any]) -> str:
    """The certified action rate at this row's eps; "-" where none was taken."""
    return percent(row.get("certified_action_rate"))


def smallest_text(result: dict[str, Any]) -> str:
    """The answer of `--find-eps` in words (the file's own, else from `min_eps`)."""
    if result.get("min_eps_text"):
        return str(result["min_eps_text"])
    if result.get("min_eps") is not None:
        return gray_levels(result["min_eps"])
    if result.get("search") is None:
        return "not searched (--find-eps)"
    return f"none up to {gray_levels(max(row['eps'] for row in result['eps']))} (the largest eps tried)"


def mean_text(summary: dict[str, Any]) -> str:
    """A mean with its evidence: "18.80 (5 games, 95% CI [17.0, 20.6])", or why it has no CI:
    "-21.00 (5 games, all alike: no CI)"."""
    n, mean = int(summary["episodes"]), summary["return_mean"]
    if math.isnan(summary_ci(summary)[0]):
        return f"{mean:.2f} ({n} game{'s' * (n != 1)}{', all alike' * (n > 1)}: no CI)"
    return f"{mean:.2f} ({n} games, 95% CI {ci_text(summary)})"


def worst_summary(row: dict[str, Any]) -> dict[str, Any]:
    """The summary of the attack the worst case names (one of those tied)."""
    return row["attacks"][row["worst_case"]["attack"]]


def checks_text(result: dict[str, Any]) -> str:
    failed = [c["name"] for c in result.get("checks", []) if not c["passed"]]
    if not failed:
        return f"all {len(result.get('checks', []))} passed"
    return f"NOT RELIABLE: {', '.join(dict.fromkeys(failed))} failed"


def warnings(result: dict[str, Any], label: str = "clean play") -> list[str]:
    """What makes the clean games (and so the threshold, the area and the search) thin evidence."""
    return evidence_warnings(label, result["clean"])


def markdown(result: dict[str, Any], escape: Callable[[object], str] = str) -> list[str]:
    """The verdict as a `report.md` section; `escape` makes user text (names) literal markdown."""
    cert = method(result)
    lines = [
        "## Robustness",
        "",
        f"{escape(result['agent'])} on {escape(result['game'])}: clean {mean_text(result['clean'])}; "
        f"random play {result.get('random_return', float('nan')):.2f}; checks {checks_text(result)}.",
        "",
        *[f"- warning: {w}" for w in warnings(result)],
        "",
        "Per eps (L-inf, gray levels), the worst case over the attack set and every attack at it:",
        "",
        f"| eps | worst case | attacks at the minimum | certified ({cert}) |",
        "|---|---|---|---|",
    ]
    for row in sorted(result["eps"], key=lambda r: r["eps"]):
        mark = "" if row.get("listed", True) else " (searched)" if row.get("searched") else " (not in --eps)"
        eps = gray_levels(row["eps"]) + mark
        lines.append(
            f"| {eps} | {mean_text(worst_summary(row))} | {escape(', '.join(tied(row)))} "
            f"| {certified_text(row)} |"
        )
    lines += [
        "",
        f"Area under the worst-case curve: {area_text(result)}; areas over other eps grids are not "
        "comparable.",
        f"Smallest eps that breaks it: {smallest_text(result)}.",
        *_smoothing(result),
        *_radius(result),
        "",
        "| eps | attack | mean | games | 95% CI | action change |",
        "|---|---|---|---|---|---|",
    ]
    for row in sorted(result["eps"], key=lambda r: r["eps"]):
        for name, s in row["attacks"].items():
            lines.append(
                f"| {gray_levels(row['eps'])} | {escape(name)} | {s['return_mean']:.2f} | {s['episodes']} "
                f"| {ci_text(s)} | {percent(s.get('action_change_rate'))} |"
            )
    return lines


def _smoothing(result: dict[str, Any]) -> list[str]:
    """The smoothed policy's own clean return, where smoothing certified."""
    own = (result.get("certify") or {}).get("smoothed_clean_return")
    return [] if own is None else [f"The smoothed policy's own clean return: {own:.2f}."]


def _radius(result: dict[str, Any]) -> list[str]:
    """The per-state certified radius's quartiles, where the file has them."""
    certify = result.get("certify") or {}
    r = certify.get("radius")
    if not r:
        return []
    cap = f" (capped at {gray_levels(r['cap'])})" if "cap" in r else ""
    return [
        f"Certified radius per state ({certify.get('method', 'ibp')}): median {gray_levels(r['median'])}, "
        f"quartiles {gray_levels(r['q25'])} to {gray_levels(r['q75'])}{cap}."
    ]
