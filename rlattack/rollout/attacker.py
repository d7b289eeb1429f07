"""The attacker in the loop: what the agent sees each step, shared by the runner and the wrappers.

It keeps, per env, the stack of frames as the agent saw them. With the `stack` threat surface
every step starts from the clean stack; with `frame` only the newest frame is perturbed and the
older ones stay as they were seen (perturbed or not) until they leave the stack.

Black-box transfer: with a `source`, the attack (and a timed schedule) works on the source's
gradients and logits only, and the policy that acts is shown what was crafted there.

Acting: the agent takes its greedy action, or (`act="sample"`) samples one from the softmax of its
logits, as A3C, TRPO, A2C and PPO agents do while they train. Greedy play of such an agent can be
far worse than its sampled play, and deterministic in a deterministic game. Sampling uses the
Gumbel-max trick, argmax(logits + G) with G drawn once per env and step, and the same G picks
the action on the clean and on the attacked observation: an action counts as changed only when
the perturbation changed it, never because two independent draws differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor

from rlattack.attacks.base import Attack
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from rlattack.schedules import EveryStep, Schedule

Act = Literal["greedy", "sample"]
ACTS: tuple[str, ...] = get_args(Act)


def draw_seed(seed: int) -> int:
    """The action draws' own stream, from `seed` but apart from the attacks' (PGD's random start,
    noise, random targets seed CPU generators with `seed` itself)."""
    return int(np.random.SeedSequence(seed, spawn_key=(1,)).generate_state(1)[0])


def check_act(policy: Policy, act: str) -> None:
    """Refuse an unknown way to act, and sampling from Q-values (they are no distribution over actions)."""
    if act not in ACTS:
        raise UserInputError(f"act must be one of {', '.join(ACTS)}, got {act!r}")
    if act == "sample" and policy.outputs == "q-values":
        raise UserInputError(
            f"{policy.name} outputs Q-values, not a distribution to sample actions from: play it greedily"
        )


@dataclass
class Step:
    """One step's outcome for the envs that were asked about (numpy, on the CPU)."""

    seen: Tensor
    """(K, *obs_shape) floats in [0, 1]: what the agent saw; valid until the attacker's next
    `observe`, which may reuse its memory (copy it to keep it)"""
    action: np.ndarray
    """(K,) the action the agent takes"""
    clean_action: np.ndarray
    """(K,) the action it would take on the clean observation (sampled: with the same draw)"""
    attacked: np.ndarray
    """(K,) bool: whether an attack ran on this env's observation"""
    target: np.ndarray
    """(K,) the target action of a targeted attack, -1 where there was none"""
    source_success: np.ndarray
    """(K,) bool: the attack succeeded on the policy it was crafted on (white-box: the agent)"""
    linf: np.ndarray
    l2: np.ndarray
    l0: np.ndarray
    """(K,) effective norms of the perturbation (0 where not attacked)"""
    queries: np.ndarray
    """(K,) forward passes a score-based attack spent (0 where it reports none)"""


class Attacker:
    """Applies `attack` under `schedule` to batches of uint8 observations; one attack call per step.

    `policy` acts (greedily, or sampling with draws seeded by `seed`); the attack is crafted on
    `source` when one is given (transfer), else on `policy`.
    """

    def __init__(
        self,
        policy: Policy,
        attack: Attack | None,
        schedule: Schedule | None = None,
        num_envs: int = 1,
        source: Policy | None = None,
        act: Act = "greedy",
        seed: int = 0,
    ) -> None:
        check_act(policy, act)
        self.policy = policy
        self.source = source
        self.crafter = policy if source is None else source
        self.attack = attack
        self.schedule = schedule or EveryStep()
        self.frame_surface = attack is not None and attack.surface == "frame"
        self.seen = torch.zeros(num_envs, *policy.obs_shape, device=policy.device)
        self.clean = torch.empty(0, device=policy.device)
        """the last step's clean observations as floats; one buffer reused while the batch keeps
        its shape, because a fresh 29 MB tensor at K = 256 costs page faults (about 13 ms a step
        on the CPU, against about 1.7 ms to fill a reused one)"""
        self.draws: torch.Generator | None = None
        if act == "sample":  # on the CPU: the same draws on every device
            self.draws = torch.Generator().manual_seed(draw_seed(seed))

    def _gumbel(self, k: int) -> Tensor | None:
        """(k, n_actions) Gumbel noise for this step's draws, None for greedy play."""
        if self.draws is None:
            return None
        u = torch.rand((k, self.policy.n_actions), generator=self.draws, dtype=torch.float64)
        return (-torch.log(-torch.log(u.clamp_min(1e-300)))).to(self.policy.device)

    @staticmethod
    def _choose(logits: Tensor, gumbel: Tensor | None) -> Tensor:
        return logits.argmax(dim=1) if gumbel is None else (logits + gumbel).argmax(dim=1)

    def observe(self, obs: np.ndarray, new_game: np.ndarray, steps: np.ndarray, envs: np.ndarray) -> Step:
        """Decide what envs `envs` (indices) see and do, given their clean uint8 observations.

        `new_game[i]` says env `envs[i]` just started a game, `steps[i]` its step in the game.
        """
        device = self.policy.device
        envs_t = torch.as_tensor(envs, device=device)
        frames = torch.as_tensor(obs, device=device)
        if self.clean.shape != frames.shape:
            self.clean = torch.empty(frames.shape, device=device)
        # the same floats as `frames / 255`, in two passes that cost less than one mixed-type division
        clean = self.clean.copy_(frames).div_(255.0)
        seen = clean
        if self.frame_surface:
            seen = torch.cat([self.seen[envs_t, 1:], clean[:, -1:]], dim=1)
            fresh = torch.as_tensor(new_game, device=device)
            seen[fresh] = clean[fresh]
        k = len(envs)
        logits = None
        if self.attack is not None and self.schedule.needs_logits:
            with torch.no_grad():
                logits = self.crafter(seen)
        attacked = np.zeros(k, dtype=bool) if self.attack is None else self.schedule(steps, logits)
        action = torch.empty(k, dtype=torch.long, device=device)
        clean_action = torch.empty_like(action)
        target = torch.full((k,), -1, dtype=torch.long, device=device)
        source_success = torch.zeros(k, dtype=torch.bool, device=device)
        norms = torch.zeros(4, k, device=device)
        hit = torch.as_tensor(attacked, device=device)
        gumbel = self._gumbel(k)
        if attacked.any():
            result = self.attack(self.crafter, seen[hit])
            clean_logits, adv_logits = result.clean_logits, result.adv_logits
            if self.source is not None:
                with torch.no_grad():
                    clean_logits, adv_logits = self.policy(seen[hit]), self.policy(result.adv)
            g = None if gumbel is None else gumbel[hit]
            clean_action[hit] = self._choose(clean_logits, g)
            action[hit] = self._choose(adv_logits, g)
            seen[hit] = result.adv
            source_success[hit] = result.success
            spent = torch.zeros_like(result.linf) if result.queries is None else result.queries
            norms[:, hit] = torch.stack([result.linf, result.l2, result.l0, spent.to(result.linf)]).to(
                norms.dtype
            )
            if result.target is not None:
                target[hit] = result.target
        if not attacked.any():  # every env plays clean: no copies of the batch
            if logits is None or self.source is not None:
                with torch.no_grad():
                    logits = self.policy(seen)
            action = clean_action = self._choose(logits, gumbel)
        elif not attacked.all():
            if logits is None or self.source is not None:
                with torch.no_grad():
                    logits = self.policy(seen[~hit])
            else:
                logits = logits[~hit]
            g = None if gumbel is None else gumbel[~hit]
            action[~hit] = clean_action[~hit] = self._choose(logits, g)
        if self.frame_surface:
            self.seen[envs_t] = seen
        linf, l2, l0, queries = norms.cpu().numpy()
        return Step(
            seen,
            action.cpu().numpy(),
            clean_action.cpu().numpy(),
            attacked,
            target.cpu().numpy(),
            source_success.cpu().numpy(),
            linf,
            l2,
            l0,
            queries,
        )
