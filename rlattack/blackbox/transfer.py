"""Transfer matrices: attacks crafted on each source policy, shown to each target policy.

A source may be a substitute trained from queries (`rlattack substitute`), another seed of the
same algorithm, another algorithm, or the target itself (the white-box diagonal). Each pair is
one `evaluate(target, ..., source=source)` run and one `TransferRecord`, saved as soon as it is
finished, so an interrupted matrix continues where it stopped; a pair whose source or target
now holds other weights (a substitute retrained into the same folder) is played again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from rlattack.attacks.base import Attack
from rlattack.attacks.spec import AttackSpec
from rlattack.attacks.targets import check_target
from rlattack.envs import make_vector_env
from rlattack.errors import UserInputError
from rlattack.files import atomic_write
from rlattack.grid.store import ResultStore, TransferRecord, transfer_key
from rlattack.grid.transfer_report import transfer_figures, transfer_table
from rlattack.policies import Policy, weights_digest
from rlattack.rollout.attacker import Act, check_act
from rlattack.rollout.evaluate import evaluate
from rlattack.schedules import Schedule, parse_schedule

MEASURED = (
    "return_mean",
    "return_std",
    "episodes",
    "action_change_rate",
    "target_rate",
    "source_success_rate",
    "linf_mean",
)
"""The fields of a pair's `evaluate` summary that its `TransferRecord` keeps."""


@dataclass
class TransferSetting:
    """The attack every pair of the matrix uses, as named in the records."""

    game: str
    attack: str
    norm: str
    eps: float
    target_rule: str | None
    options: dict[str, Any]
    """the rest of what the attack depends on (schedule, surface, attack options); the games,
    envs and seed of the run are added to it in the records"""
    build: Callable[[], Attack]
    """a fresh attack per pair, so seeded attacks start from the same state in every pair"""
    schedule: Callable[[], Schedule | None]

    @classmethod
    def of(cls, game: str, spec: AttackSpec, schedule: str, seed: int) -> TransferSetting:
        """The setting of `rlattack transfer`; its options are what the records are keyed by."""
        if spec.name == "none":
            raise UserInputError("transfer needs an attack (fgsm, pgd, jsma or noise)")
        spec.build(seed)  # bad attack options fail here, before any game is played
        parse_schedule(schedule, seed)
        options = {
            "schedule": schedule,
            "surface": spec.surface,
            "quantize": spec.quantize,
            "steps": spec.steps,
        }
        options |= {"step_size": spec.step_size, "theta": spec.theta, "gamma": spec.gamma}
        return cls(
            game,
            spec.name,
            spec.norm,
            spec.eps,
            spec.target,
            options,
            lambda: cast(Attack, spec.build(seed)),
            lambda: parse_schedule(schedule, seed),
        )


def transfer_matrix(
    sources: list[str],
    targets: list[str],
    load: Callable[[str], Policy],
    setting: TransferSetting,
    out: Path,
    episodes: int,
    envs: int,
    seed: int,
    clean: bool = True,
    progress: bool = True,
    announce: Callable[[TransferRecord], None] | None = None,
    act: Act = "greedy",
) -> list[TransferRecord]:
    """Every (source, target) pair not yet in `out`, then all pairs' records in matrix order.

    With `clean`, each target also plays the same games unattacked, once, for the reference return.
    `act="sample"`: the targets sample their actions (clean and attacked games alike).
    """
    if not sources or not targets:
        raise UserInputError("name at least one --source and one --victim")
    sources, targets = list(dict.fromkeys(sources)), list(dict.fromkeys(targets))  # each pair once
    if episodes < 1 or envs < 1:
        raise UserInputError(f"need --episodes >= 1 and --envs >= 1 (got {episodes}, {envs})")
    s = setting
    common = {"game": s.game, "attack": s.attack, "norm": s.norm, "eps": s.eps, "target_rule": s.target_rule}
    common["setting"] = s.options | {"episodes": episodes, "envs": envs, "seed": seed}
    if act != "greedy":  # greedy, the default, stays out: records from before `act` keep their keys
        common["setting"]["act"] = act

    def key(source: str, target: str) -> str:
        return transfer_key(common | {"source": source, "target": target})

    store = ResultStore(out)
    store.check_root()
    env = make_vector_env(s.game, 1)  # every policy and the target rule must fit the game first
    game = (int(env.single_action_space.n), env.single_observation_space.shape, s.game)
    env.close()
    digests = {}
    for agent in [*sources, *targets]:
        policy = load(agent)
        policy.check_fits(*game)
        if agent in targets:
            check_act(policy, act)
        digests[agent] = weights_digest(policy)
    check_target(s.target_rule, *game)

    def weights(source: str, target: str) -> dict[str, str]:
        return {"source": digests[source], "target": digests[target]}

    def finished(source: str, target: str) -> bool:
        """Saved, and measured on the weights these names hold now (else it is played again)."""
        record = store.transfer_record(key(source, target))
        return record is not None and record.weights == weights(source, target)

    with store.lock():
        for target in targets:
            todo = [source for source in sources if not finished(source, target)]
            clean_return = None
            if todo and clean:
                clean_return = evaluate(
                    load(target), s.game, None, None, episodes, envs, seed, progress, act=act
                ).summary["return_mean"]
            for source in todo:
                summary = evaluate(
                    load(target),
                    s.game,
                    s.build(),
                    s.schedule(),
                    episodes,
                    envs,
                    seed,
                    progress,
                    load(source),
                    act,
                ).summary
                record = TransferRecord(
                    **common,
                    source=source,
                    target=target,
                    **{k: summary[k] for k in MEASURED},
                    clean_return=clean_return,
                    weights=weights(source, target),
                )
                store.save_transfer(record)
                if announce is not None:
                    announce(record)
    keys = {key(source, target) for source in sources for target in targets}
    records = [r for r in store.transfer_records() if r.key in keys]
    return sorted(records, key=lambda r: (sources.index(r.source), targets.index(r.target)))


def write_transfer_report(records: list[TransferRecord], out: Path) -> list[Path]:
    """The matrix's heatmaps and `transfer.md` in `out`; the heatmaps written."""
    figures = transfer_figures(records, out)
    atomic_write(out / "transfer.md", lambda p: p.write_text("\n".join(transfer_table(records)) + "\n"))
    return figures
