"""The README's results table, from the `--json` summaries of `run.sh`.

    python experiments/robustness/table.py pong-dqn pong-dqn-s2 ...

One row per victim and eps: the mean return of each attack of the set, the worst case with every
attack that reaches it and its 95% t-interval, the IBP certified action rate, and on the first
row the clean mean with its interval, the median certified radius, the area and the checks.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

from rlattack.intervals import summary_ci

RESULTS = Path(__file__).parent / "results"
ATTACKS = ("apgd-ce", "apgd-dlr", "square", "transfer", "noise", "ensemble")


def gray_levels(eps: float) -> str:
    return f"{Fraction(eps * 255).limit_denominator(100)}/255"


def interval(summary: dict) -> str:
    lo, hi = summary_ci(summary)
    return "(all alike)" if lo != lo else f"[{lo:.1f}, {hi:.1f}]"  # NaN: every game scored the same


def rows(victim: str) -> list[str]:
    summary = json.loads((RESULTS / f"{victim}.json").read_text())
    clean = summary["clean"]
    failed = sorted({c["name"] for c in summary["checks"] if not c["passed"]})
    lines = []
    radius = (summary["certify"].get("radius") or {}).get("median")
    for i, at in enumerate(r for r in summary["eps"] if r.get("listed", True)):
        returns = {name: at["attacks"][name]["return_mean"] for name in ATTACKS if name in at["attacks"]}
        worst = at["worst_case"]
        tied = ", ".join(worst.get("attacks_tied") or [worst["attack"]])
        cells = [f"{returns[name]:.1f}" if name in returns else "" for name in ATTACKS]
        first = i == 0
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{victim}`" if first else "",
                    f"{clean['return_mean']:.1f} {interval(clean)}" if first else "",
                    gray_levels(at["eps"]),
                    *cells,
                    f"{worst['return_mean']:.1f} {interval(at['attacks'][worst['attack']])}: {tied}",
                    f"{at['certified_action_rate']:.0%}",
                    "" if radius is None or not first else f"{radius * 255:.2f}/255",
                    f"{summary['auc']:.3f}" if first else "",
                    ("all pass" if not failed else "failed: " + ", ".join(failed)) if first else "",
                ]
            )
            + " |"
        )
    return lines


def main(victims: list[str]) -> None:
    print(
        "| victim | clean [95% CI] | eps | " + " | ".join(ATTACKS)
        + " | worst case [95% CI]: attacks at it | certified | median radius | area | checks |"
    )  # fmt: skip
    print("| --- " * (len(ATTACKS) + 8) + "|")
    for victim in victims:
        print("\n".join(rows(victim)))


if __name__ == "__main__":
    main(sys.argv[1:])
