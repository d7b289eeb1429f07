"""The README's results table, from the `--json` summaries of `run.sh`.

    python experiments/robustness/table.py pong-dqn pong-dqn-s2 ...

One row per victim and eps: the mean return of each attack of the set, the worst case with every
attack that reaches it, the IBP certified action rate, the area (first row) and the checks.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ATTACKS = ("apgd-ce", "apgd-dlr", "square", "transfer", "noise", "ensemble")


def gray_levels(eps: float) -> str:
    return f"{Fraction(eps * 255).limit_denominator(100)}/255"


def rows(victim: str) -> list[str]:
    summary = json.loads((RESULTS / f"{victim}.json").read_text())
    clean = summary["clean"]
    failed = sorted({c["name"] for c in summary["checks"] if not c["passed"]})
    lines = []
    for i, at in enumerate(summary["eps"]):
        returns = {name: at["attacks"][name]["return_mean"] for name in ATTACKS if name in at["attacks"]}
        low = min(returns.values())
        tied = ", ".join(name for name, r in returns.items() if r == low)
        cells = [f"{returns[name]:.1f}" if name in returns else "" for name in ATTACKS]
        first = i == 0
        lines.append(
            "| "
            + " | ".join(
                [
                    f"`{victim}`" if first else "",
                    f"{clean['return_mean']:.1f} ({clean['return_std']:.1f})" if first else "",
                    gray_levels(at["eps"]),
                    *cells,
                    f"{low:.1f} ({tied})",
                    f"{at['certified_action_rate']:.0%}",
                    f"{summary['auc']:.3f}" if first else "",
                    ("all pass" if not failed else "failed: " + ", ".join(failed)) if first else "",
                ]
            )
            + " |"
        )
    return lines


def main(victims: list[str]) -> None:
    print("| victim | clean | eps | " + " | ".join(ATTACKS) + " | worst case | certified | area | checks |")
    print("| --- " * (len(ATTACKS) + 7) + "|")
    for victim in victims:
        print("\n".join(rows(victim)))


if __name__ == "__main__":
    main(sys.argv[1:])
