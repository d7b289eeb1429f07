"""What each attack of the robustness set costs per step, against PGD-10, measured in one run.

    python benchmarks/attack_set_cost.py --agent pong-dqn --batch 5 --rounds 5 --threads 1

Each attack is called on the same batch of states of the agent's own clean play (K envs of
`rlattack robustness`), in interleaved rounds, so that a busy machine slows every attack alike;
the median of the rounds is printed, with Square's queries per changed action. The last line is
`ratio APGD-CE DEFAULT-SET`: APGD-CE's time over PGD-10's, and the default set's (one call of each
member per step) over the set it replaced (PGD-10, PGD-10 margin, MAD, MI-FGSM, noise).
"""

from __future__ import annotations

import statistics
import time

import torch

from rlattack.attacks.spec import AttackSpec
from rlattack.cli_options import CommandArgs, run_command
from rlattack.grid.run import torch_threads
from rlattack.loading import load_policy
from rlattack.robustness.attack_set import ATTACK_SET, DEFAULT_SET, grid_entry, surrogate_for
from rlattack.rollout.watch import Greedy, watch
from rlattack.zoo import game_of

REPLACED = ("pgd", "pgd-margin", "mad", "momentum", "noise")
"""The default set before APGD, Square, transfer and the ensemble joined it."""


class Args(CommandArgs):
    agent: str = "pong-dqn"
    """a zoo victim (its game and a surrogate come from the zoo)"""
    batch: int = 5
    """observations attacked together (K envs)"""
    eps: float = 1 / 255
    rounds: int = 5
    """interleaved rounds; each attack is called once per round on a fresh batch"""
    threads: int = 1


def main(args: Args) -> None:
    with torch_threads(args.threads):
        policy = load_policy(args.agent)
        game = game_of(args.agent)
        surrogate = surrogate_for(policy, game)
        data = watch(Greedy(policy), game, args.batch * args.rounds, envs=4, seed=7, progress=False, every=8)
        states = torch.as_tensor(data.obs).float() / 255
        names = list(dict.fromkeys([*REPLACED, *DEFAULT_SET]))
        attacks = {
            n: AttackSpec.parse(**grid_entry(n, surrogate), eps=args.eps).build(0)
            for n in names
            if n in ATTACK_SET
        }
        times: dict[str, list[float]] = {n: [] for n in attacks}
        queries = changed = 0
        for r in range(args.rounds):
            x = states[r * args.batch : (r + 1) * args.batch]
            for name, attack in attacks.items():
                start = time.perf_counter()
                result = attack(policy, x)
                times[name].append(time.perf_counter() - start)
                if name == "square":
                    queries += int(result.queries.sum())
                    changed += int(result.changed.sum())
    median = {n: statistics.median(t) for n, t in times.items()}
    for name, t in median.items():
        print(f"{name:12s} {1000 * t:8.1f} ms per call of {args.batch}   {t / median['pgd']:5.2f} x PGD-10")
    print(f"square: {queries / max(changed, 1):.1f} queries per changed action ({changed} changed)")
    old = sum(median[n] for n in REPLACED)
    new = sum(median[n] for n in DEFAULT_SET)
    print(f"ratio {median['apgd-ce'] / median['pgd']:.2f} {new / old:.2f}")


if __name__ == "__main__":
    run_command(main, Args)
