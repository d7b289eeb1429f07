"""The certificates of a robustness evaluation, on states of the agent's own clean play, kept in
its results directory (`certificates.json`) so that a rerun does not compute them again: the
certified action rate at each eps, the per-state radius's quartiles, and, for smoothing, the
smoothed policy's own clean return."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rlattack.files import write_json
from rlattack.policies import Policy
from rlattack.robustness.settings import SMOOTHED_DRAWS, SMOOTHING_DRAWS, RobustnessSettings
from rlattack.rollout.evaluate import evaluate

RADIUS_CAP = 16 / 255
"""The largest IBP radius searched per state: a radius this large is reported as the cap."""


class KeptCertificates:
    """An evaluation's certificates, computed once per (method, states, seed, sigma)."""

    def __init__(
        self,
        policy: Policy,
        states: Callable[[], Tensor],
        settings: RobustnessSettings,
        out: Path,
        play: tuple[str, int, int, int, bool],
    ) -> None:
        """`states` gives the states to certify (collected on first use); `play` is how the
        smoothed policy plays for its clean return: (game, episodes, envs, seed, progress)."""
        self.policy, self._states, self.settings, self.out = policy, states, settings, out
        self.game, self.episodes, self.envs, self.seed, self.progress = play

    @property
    def states(self) -> Tensor:
        return self._states()

    def rates(self, budgets: list[float]) -> dict[float, float | None]:
        """The certified action rate at each eps on the agent's clean play; kept across runs."""
        s = self.settings
        if s.certify == "none":
            return dict.fromkeys(budgets)
        path, key = self.out / "certificates.json", self._certificate_key()
        kept = json.loads(path.read_text()) if path.is_file() else {}
        rates = {float(e): r for e, r in kept.get(key, {}).items()}
        missing = [e for e in budgets if e not in rates]
        if missing:
            x = self.states
            if s.certify == "ibp":
                from rlattack.certify import certified

                rates |= {e: float(certified(self.policy, x, e).float().mean()) for e in missing}
            else:
                from rlattack.certify import certified_share

                rates |= {e: certified_share(self._smoothing, e, in_eps=True) for e in missing}
                kept[key + " smoothed clean return"] = self._smoothed_return()
            kept[key] = {str(e): r for e, r in sorted(rates.items())}
            write_json(path, kept)
        return {e: rates[e] for e in budgets}

    def radius(self) -> dict[str, float] | None:
        """Quartiles of the per-state certified radius in eps (IBP: the largest eps it proves, up
        to `RADIUS_CAP`; smoothing: the L2 radius in eps units, 0 where it abstains); kept across
        runs. How far the states are from being certified, where a rate says only yes or no."""
        s = self.settings
        if s.certify == "none":
            return None
        path, key = self.out / "certificates.json", self._certificate_key() + " radius"
        kept = json.loads(path.read_text()) if path.is_file() else {}
        if key not in kept:
            if s.certify == "ibp":
                from rlattack.certify import certified_radius

                found = certified_radius(self.policy, self.states, RADIUS_CAP)
            else:
                found = self._smoothing.radius_eps.clamp(min=0)
            q = torch.quantile(found.double().cpu(), torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
            kept[key] = {"q25": float(q[0]), "median": float(q[1]), "q75": float(q[2])}
            kept[key] |= {"cap": RADIUS_CAP} if s.certify == "ibp" else {}
            write_json(path, kept)
        return kept[key]

    @cached_property
    def _smoothing(self) -> Any:
        from rlattack.certify import certify

        return certify(
            self.policy,
            self.states,
            self.settings.sigma,
            n=SMOOTHING_DRAWS,
            seed=self.seed,
        )

    def smoothed_return(self) -> float | None:
        """The smoothed policy's own clean return, where smoothing certified the states."""
        path = self.out / "certificates.json"
        kept = json.loads(path.read_text()) if path.is_file() else {}
        return kept.get(self._certificate_key() + " smoothed clean return")

    def _certificate_key(self) -> str:
        """What a kept certificate depends on: the method, the states and the noise."""
        s = self.settings
        return json.dumps({"method": s.certify, "states": s.states, "seed": self.seed, "sigma": s.sigma})

    def _smoothed_return(self) -> float:
        from rlattack.certify import SmoothedPolicy

        smoothed = SmoothedPolicy(
            self.policy,
            self.settings.sigma,
            n=SMOOTHED_DRAWS,
            seed=self.seed,
        )
        games = (self.episodes, self.envs, self.seed, self.progress)
        return evaluate(smoothed, self.game, None, None, *games).summary["return_mean"]
