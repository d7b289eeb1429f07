"""`rlattack robustness`: every attack of a set at every eps on the same games, their worst case,
the curve and its area, the smallest eps that breaks the policy, the certified action rate, and
the checks that say whether to trust the verdict (`rlattack.robustness.checks`).

The games go through a grid (`rlattack.grid`) written into the output directory: the same seeds
and env splits for every attack, one record per finished (attack, eps) cell, so an interrupted
evaluation continues where it stopped and `rlattack report DIR` draws it. Certificates are taken
on states of the agent's own clean play (SA-DQN and RADIAL report them so): every 8th step of
games seeded apart from the evaluation's, `states` of them; they are kept in `certificates.json`
(`rlattack.robustness.kept_certificates`).
"""

from __future__ import annotations

import sys
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from tqdm import tqdm

from rlattack import loading
from rlattack.attacks.presets import BLACK_BOX, ENSEMBLE_MEMBERS
from rlattack.attacks.spec import AttackSpec, parse_eps
from rlattack.errors import UserInputError, explain
from rlattack.expectation import is_randomized
from rlattack.files import write_json
from rlattack.grid.config import GridConfig
from rlattack.grid.run import run_grid
from rlattack.grid.store import ResultStore
from rlattack.intervals import ci_pair, evidence_warnings
from rlattack.plots import gray_levels, plot_curve
from rlattack.policies import Policy, weights_digest
from rlattack.robustness import checks
from rlattack.robustness.attack_set import (
    WHITE_BOX,
    grid_entry,
    name_of,
    parse_attack_set,
    surrogate_for,
)
from rlattack.robustness.kept_certificates import KeptCertificates
from rlattack.robustness.random_play import random_return
from rlattack.robustness.search import Search, find_eps
from rlattack.robustness.settings import (
    EOT_DRAWS,
    LARGE_EPS,
    SMOOTHED_DRAWS,
    SMOOTHING_DRAWS,
    STATE_EVERY,
    RobustnessSettings,
)
from rlattack.robustness.summary import area_and_answer, rows_of, summary_rows, worst_case
from rlattack.rollout.watch import Greedy, watch

CHECK_STATES = 32
"""States of the agent's clean play that the checks on the policy look at."""


class RobustnessEvaluation:
    """One agent's robustness evaluation in its results directory `out`."""

    def __init__(
        self,
        agent: str,
        policy: Policy,
        game: str,
        settings: RobustnessSettings,
        out: Path,
        episodes: int,
        envs: int,
        seed: int,
        device: str,
        progress: bool,
    ) -> None:
        self.agent, self.policy, self.game, self.settings, self.out = agent, policy, game, settings, out
        self.games = {"episodes": episodes, "envs": envs, "seeds": [seed], "device": device}
        self.seed, self.progress = seed, progress
        self.names = parse_attack_set(settings.attacks)
        """the attacks this run plays"""
        self.reported = [*self.names, *(n for n in self._names_in_out() if n not in self.names)]
        """the attacks the summary reports: this run's and those an earlier run left in `out`"""
        self.notes: list[str] = []
        self.surrogate = settings.surrogate
        if self.surrogate is None and {"transfer", "ensemble"} & set(self.reported):
            self.surrogate = surrogate_for(policy, game)
        if self.surrogate is None and "transfer" in self.names:
            self.names.remove("transfer")
            self.reported.remove("transfer")
            self.notes.append(f"no surrogate for {game} in the zoo: transfer skipped (give --surrogate)")
        if self.surrogate is not None:  # a surrogate of another game is refused before any game
            try:
                surrogate = loading.load_policy(self.surrogate)
                surrogate.check_fits(policy.n_actions, policy.obs_shape, policy.name)
            except UserInputError as e:
                raise UserInputError(f"surrogate {self.surrogate}: {e}") from None
        if policy.n_actions < 3 and "apgd-dlr" in self.names:
            self.names.remove("apgd-dlr")
            self.reported.remove("apgd-dlr")
            self.notes.append(f"{policy.n_actions} actions: apgd-dlr skipped (DLR needs at least 3)")
        self.blind = checks.gradient_unusable(policy, self.states[:8])
        """why gradient attacks cannot run (they are skipped, the black-box ones play), or None"""
        if self.blind is not None:
            self.names = [n for n in self.names if n not in WHITE_BOX]
            self.reported = [n for n in self.reported if n not in WHITE_BOX]
            self.notes.append(f"{policy.name}: {self.blind}; gradient attacks skipped, black-box ones play")
        if not self.names:
            raise UserInputError("no attack of the set applies to this agent")
        self.eot = settings.eot or (EOT_DRAWS if is_randomized(policy, self.states[:8]) else 1)
        play = (game, episodes, envs, seed, progress)
        self.certified = KeptCertificates(policy, lambda: self.states, settings, out, play)
        """the certificates on the agent's clean play, kept in `out` across runs"""
        if settings.certify == "ibp":  # a network IBP cannot bound is refused before any game
            from rlattack.certify import certified

            certified(policy, self.states[:1], max(settings.budgets))
        if settings.certify == "smoothing":
            from rlattack.certify.smoothing import largest_radius_eps

            reach = largest_radius_eps(settings.sigma, policy.obs_shape)
            if reach < max(settings.budgets):
                self.notes.append(
                    f"smoothing at sigma {settings.sigma:g} with {SMOOTHING_DRAWS} draws certifies "
                    f"at most eps {gray_levels(reach)}: nothing at {gray_levels(max(settings.budgets))} "
                    "(a larger --sigma reaches further)"
                )

    def _names_in_out(self) -> list[str]:
        """The set's attacks of the finished cells in `out` that this agent's games played."""
        if not (self.out / "cells").is_dir():
            return []
        names = (self._name(r["cell"]) for r in ResultStore(self.out).records() if self._ours(r))
        return [n for n in dict.fromkeys(names) if n not in (None, "clean")]

    @cached_property
    def digest(self) -> str:
        return weights_digest(self.policy)

    def _ours(self, record: dict[str, Any]) -> bool:
        """A record of this agent, game, seed and game count, measured on the weights the agent
        holds now (a record without a digest is taken as it is): a victim trained further under
        the same name leaves behind records of its old weights, of attacks an earlier set played
        that this run does not play again."""
        cell = record["cell"]
        ours = (cell["agent"], cell["game"], cell["seed"], cell["episodes"], cell["envs"]) == (
            self.agent,
            self.game,
            self.seed,
            self.games["episodes"],
            self.games["envs"],
        )
        return ours and record.get("weights") in (None, self.digest)

    @staticmethod
    def _name(cell: dict[str, Any]) -> str | None:
        return "clean" if cell["attack"] == "none" else name_of(cell["attack"], cell["options"])

    @cached_property
    def states(self) -> torch.Tensor:
        """States of the agent's own clean play, for the certificates and the checks."""
        return self._clean_states()

    def entry(self, name: str) -> dict[str, Any]:
        """The set's attack as a grid entry, with this evaluation's surrogate and EOT (and, where
        gradients are unusable, an ensemble of the black-box attacks only)."""
        entry = grid_entry(name, self.surrogate) | ({"eot": self.eot} if self.eot > 1 else {})
        members = [m for m in ENSEMBLE_MEMBERS if self.blind is None or m not in WHITE_BOX]
        members = [m for m in members if m != "apgd-dlr" or self.policy.n_actions >= 3]
        if name == "ensemble":
            entry["members"] = ",".join(members)
        return entry

    def run_attacks(
        self, budgets: list[float], large: bool = False
    ) -> dict[float, dict[str, dict[str, Any]]]:
        """Every attack of the set at each eps (and the clean games), through the grid; summaries
        by eps (0: clean) and attack name. `large` adds APGD-CE at `LARGE_EPS`."""
        config = {"agents": [self.agent], "games": [self.game], "norms": ["inf"], **self.games}
        attacks: list[Any] = ["none", *(self.entry(name) for name in self.names)]
        if self.blind is None and (
            large or any(e == LARGE_EPS and e not in budgets for e in self.measured())
        ):
            attacks.append(self.entry("apgd-ce") | {"eps": [_text(LARGE_EPS)]})
        config |= {"attacks": attacks}
        kept = {e for e in self.measured() if e != LARGE_EPS or e in budgets}
        config |= {"eps": [_text(e) for e in sorted((set(budgets) | kept) - {0.0})]}
        try:
            grid = GridConfig(**config)
        except ValidationError as e:
            raise UserInputError(f"bad evaluation: {explain(e, allowed=GridConfig.model_fields)}") from None
        self.check_out()
        loaded = {self.agent: self.policy}
        run_grid(grid, self.out, extend=True, progress=self.progress, loaded=loaded, written_as="grid.yaml")
        return self.measured()

    def check_out(self) -> None:
        """Refuse an output folder that holds another agent's or game's results: an evaluation
        adds its own cells to its own folder, and would mix others' into its summary."""
        info = ResultStore(self.out).run_info()
        if info is None:
            return
        held = (info["grid"].get("agents"), info["grid"].get("games"))
        if held != ([self.agent], [self.game]):
            raise UserInputError(
                f"{self.out} holds results of agents {held[0]} on games {held[1]}, not {self.agent} on "
                f"{self.game}: use another --out"
            )

    def measured(self) -> dict[float, dict[str, dict[str, Any]]]:
        """The summaries this evaluation's games hold so far, by eps (0: clean) and attack name:
        every finished cell of `out` with this agent's games and this evaluation's settings of
        its attack (surrogate, EOT, ensemble members), whichever run played it."""
        found: dict[float, dict[str, dict[str, Any]]] = {}
        self.left_out = 0
        if not (self.out / "cells").is_dir():
            return found
        for record in ResultStore(self.out).records():
            cell = record["cell"]
            name = self._name(cell)
            if not self._ours(record) or name is None or not self._settings_match(name, cell["options"]):
                self.left_out += 1
                continue
            if name == "clean" or name in self.reported:
                found.setdefault(float(cell["eps"]), {})[name] = record["summary"]
        return found

    def _settings_match(self, name: str, options: dict[str, Any]) -> bool:
        if name == "clean":
            return True
        try:
            expected = self.entry(name)
        except UserInputError:  # an attack that needs a surrogate this evaluation has not got
            return False
        return all(options.get(k) == expected.get(k) for k in ("surrogate", "eot", "members"))

    def run_checks(
        self, rows: list[dict[str, Any]], measured: dict[float, Any], clean: float, random: float
    ) -> list[checks.Check]:
        """Every check of `rlattack.robustness.checks` on this evaluation's policy and games."""
        x = self.states[:CHECK_STATES]
        white = tuple(n for n in self.reported if n in WHITE_BOX)
        iterative = {n: AttackSpec.parse(**self.entry(n)) for n in self.names if n in white and n != "fgsm"}
        if self.blind is not None:
            iterative = {}
        found = [
            checks.gradient_check(self.policy, x),
            checks.randomness_check(self.policy, x, self.eot),
            checks.probability_check(self.policy, x),
            checks.black_box_check(rows, white, BLACK_BOX),
        ]
        largest = max(e for e in measured if e > 0)
        at_largest = [
            measured[largest][n]["return_mean"] for n in (*white, "apgd-ce") if n in measured[largest]
        ]
        if at_largest:
            found.append(checks.large_eps_check(largest, min(at_largest), clean, random))
        for row in rows if iterative else []:
            found.append(checks.convergence_check(self.policy, x, row["eps"], iterative, self.seed, self.eot))
        return found

    def _clean_states(self) -> torch.Tensor:
        seed = self.seed + 2_000_000  # games apart from those the attacks play
        data = watch(
            Greedy(self.policy),
            self.game,
            self.settings.states if self.settings.certify != "none" else CHECK_STATES,
            self.games["envs"],
            seed,
            progress=self.progress,
            every=STATE_EVERY,
        )
        return torch.as_tensor(data.obs, device=self.policy.device).float() / 255.0


def evaluate_robustness(evaluation: RobustnessEvaluation) -> dict[str, Any]:
    """Run (or continue) the evaluation and return its summary, in the shape of `--json`."""
    s, budgets = evaluation.settings, evaluation.settings.budgets
    for note in evaluation.notes:
        tqdm.write(note, file=sys.stderr)
    measured = evaluation.run_attacks(budgets, large=max(budgets) < LARGE_EPS)
    clean = measured[0.0]["clean"]
    random = random_return(
        evaluation.game, evaluation.games["episodes"], evaluation.games["envs"], evaluation.seed
    )
    threshold = s.threshold if s.threshold is not None else (clean["return_mean"] + random) / 2
    search = None
    if s.find_eps:
        known = {0.0: clean["return_mean"]}
        known |= {e: worst_case(at)["return_mean"] for e, at in rows_of(measured, budgets).items()}
        search = find_eps(
            lambda e: worst_case(evaluation.run_attacks([e])[e])["return_mean"],
            threshold,
            known,
            max(budgets),
            parse_eps(s.tolerance),
        )
        measured = evaluation.measured()
    result = summarize(evaluation, measured, search, random, threshold)
    write_json(evaluation.out / "robustness.json", result)
    plot_curve(result, evaluation.out / "robustness.png")
    return result


def summarize(
    evaluation: RobustnessEvaluation,
    measured: dict[float, dict[str, dict[str, Any]]],
    search: Search | None,
    random: float,
    threshold: float,
) -> dict[str, Any]:
    """The summary of every finished cell of the evaluation's directory, in the shape of `--json`.

    Rows cover every eps measured there, this run's `--eps` (`listed`), a search's points and an
    earlier run's eps alike. The area is taken over the listed eps only, and says so (`auc_grid`):
    an area is comparable only between agents measured on the same grid.
    """
    s, budgets = evaluation.settings, evaluation.settings.budgets
    clean = measured[0.0]["clean"]
    found = rows_of(measured, budgets)
    rates = evaluation.certified.rates(list(found))
    searched = [] if search is None else list(search.points)
    rows = summary_rows(found, evaluation.reported, budgets, searched, rates)
    found = evaluation.run_checks(rows, measured, clean["return_mean"], random)
    for check in found:
        if not check.passed:
            tqdm.write(f"warning: {check.name}: {check.detail}", file=sys.stderr)
    notes = list(evaluation.notes)
    if evaluation.left_out:
        notes.append(
            f"{evaluation.left_out} finished cells in {evaluation.out} are not in this summary: other "
            "games (--episodes, --envs, --seed), other attack settings (surrogate, EOT) or weights "
            "the agent no longer holds"
        )
    evidence = evidence_warnings("the clean return (and each attacked one, on the same starts)", clean)
    return {
        "agent": evaluation.agent,
        "game": evaluation.game,
        "reliable": all(c.passed for c in found),
        "checks": [c.to_dict() for c in found],
        "surrogate": evaluation.surrogate,
        "eot": evaluation.eot,
        "notes": notes,
        "evidence": evidence,
        "clean": clean | {"ci95": ci_pair(clean)},
        "eps": rows,
        **area_and_answer(rows, budgets, clean["return_mean"], random, search),
        "random_return": random,
        "threshold": threshold,
        "certify": {"method": s.certify, "states": s.states, "every": STATE_EVERY}
        | {"radius": evaluation.certified.radius()}
        | (
            {
                "sigma": s.sigma,
                "norm": "L2 (rlattack eps units)",
                "draws": SMOOTHING_DRAWS,
                "smoothed_clean_return": evaluation.certified.smoothed_return(),
                "smoothed_draws": SMOOTHED_DRAWS,
            }
            if s.certify == "smoothing"
            else {}
        ),
        "search": None
        if search is None
        else {
            "evaluations": search.evaluations,
            "tolerance": search.tolerance,
            "floor": search.floor,
            "points": [{"eps": e, "worst_case": r} for e, r in search.points.items()],
        },
    }


def _text(eps: float) -> str | float:
    """An eps as the grid's config shows it: a fraction of gray levels where that reads back as
    exactly this float (1/255, 3/255, 1/510), else the number itself."""
    levels = Fraction(eps * 255).limit_denominator(1000)
    text = f"{levels.numerator}/{255 * levels.denominator}"
    return text if parse_eps(text) == eps else eps
