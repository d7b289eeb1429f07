"""The rows of a robustness summary: which measured eps it reports, and the worst case of each
with every attack tied at it."""

from __future__ import annotations

import math
from typing import Any

from rlattack.intervals import ci_pair
from rlattack.plots import gray_levels
from rlattack.robustness.curve import area, at_floor
from rlattack.robustness.search import Search
from rlattack.robustness.settings import LARGE_EPS


def worst_case(at: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The lowest mean return among the attacks of one eps, with every attack that reaches it
    (`attack`: the first of them, in the set's order)."""
    returns = {name: summary["return_mean"] for name, summary in at.items() if name != "clean"}
    low = min(returns.values())
    tied = [name for name, r in returns.items() if math.isclose(r, low, rel_tol=0, abs_tol=1e-9)]
    return {"attack": tied[0], "attacks_tied": tied, "return_mean": low}


def rows_of(measured: dict[float, dict[str, Any]], budgets: list[float]) -> dict[float, dict[str, Any]]:
    """The measured eps the summary reports: all but clean play and the large-eps check's lone
    cell (unless asked for)."""
    return {
        e: at
        for e, at in sorted(measured.items())
        if e > 0 and (e != LARGE_EPS or e in budgets or set(at) - {"apgd-ce"})
    }


def summary_rows(
    found: dict[float, dict[str, Any]],
    reported: list[str],
    budgets: list[float],
    searched: list[float],
    rates: dict[float, float | None],
) -> list[dict[str, Any]]:
    """One row per reported eps: its attacks in the set's order, the worst case with its interval,
    whether the run listed it or a search measured it, and the certified rate."""
    rows = []
    for e, at in found.items():
        attacks = {n: at[n] for n in reported if n in at}
        worst = worst_case(attacks)
        worst |= {"episodes": at[worst["attack"]]["episodes"], "ci95": ci_pair(at[worst["attack"]])}
        rows.append(
            {"eps": e, "listed": e in budgets, "searched": e in searched and e not in budgets}
            | {"attacks": attacks, "worst_case": worst, "certified_action_rate": rates[e]}
        )
    return rows


def area_and_answer(
    rows: list[dict[str, Any]], budgets: list[float], clean: float, random: float, search: Search | None
) -> dict[str, Any]:
    """The area over the listed eps with its grid and floor flag, and where the agent breaks: the
    search's bracket, or, at the grid's floor, at most the smallest listed eps."""
    worst = [r["worst_case"]["return_mean"] for r in rows if r["listed"]]
    auc = area(budgets, worst, clean, random)
    floor = auc is not None and at_floor(worst, random)
    if search is not None:
        answer = search.text(max(budgets))
    elif floor:
        answer = f"at most {gray_levels(budgets[0])} (the smallest listed eps; --find-eps searches below it)"
    else:
        answer = "not searched (--find-eps)"
    return {
        "auc": auc,
        "auc_grid": budgets,
        "auc_at_floor": floor,
        "min_eps": None if search is None else search.eps,
        "min_eps_bracket": None if search is None else search.bracket,
        "min_eps_text": answer,
    }
