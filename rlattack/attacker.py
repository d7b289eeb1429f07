"""The attacker in the loop: what the agent sees each step, shared by the runner and the wrappers.

It keeps, per env, the stack of frames as the agent saw them. With the `stack` threat surface
every step starts from the clean stack; with `frame` only the newest frame is perturbed and the
older ones stay as they were seen (perturbed or not) until they leave the stack.

Black-box transfer: with a `source`, the attack (and a timed schedule) works on the source's
gradients and logits only, and the policy that acts is shown what was crafted there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rlattack.attacks.base import Attack
from rlattack.policies import Policy
from rlattack.schedules import EveryStep, Schedule


@dataclass
class Step:
    """One step's outcome for the envs that were asked about (numpy, on the CPU)."""

    seen: Tensor
    """(K, *obs_shape) floats in [0, 1]: what the agent saw"""
    action: np.ndarray
    """(K,) the action the agent takes"""
    clean_action: np.ndarray
    """(K,) the action it would take on the clean observation"""
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


class Attacker:
    """Applies `attack` under `schedule` to batches of uint8 observations; one attack call per step.

    `policy` acts; the attack is crafted on `source` when one is given (transfer), else on `policy`.
    """

    def __init__(
        self,
        policy: Policy,
        attack: Attack | None,
        schedule: Schedule | None = None,
        num_envs: int = 1,
        source: Policy | None = None,
    ) -> None:
        self.policy = policy
        self.source = source
        self.crafter = policy if source is None else source
        self.attack = attack
        self.schedule = schedule or EveryStep()
        self.frame_surface = attack is not None and attack.surface == "frame"
        self.seen = torch.zeros(num_envs, *policy.obs_shape, device=policy.device)

    def observe(self, obs: np.ndarray, new_game: np.ndarray, steps: np.ndarray, envs: np.ndarray) -> Step:
        """Decide what envs `envs` (indices) see and do, given their clean uint8 observations.

        `new_game[i]` says env `envs[i]` just started a game, `steps[i]` its step in the game.
        """
        device = self.policy.device
        envs_t = torch.as_tensor(envs, device=device)
        clean = torch.as_tensor(obs, device=device).float() / 255.0
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
        norms = torch.zeros(3, k, device=device)
        hit = torch.as_tensor(attacked, device=device)
        if attacked.any():
            result = self.attack(self.crafter, seen[hit])
            if self.source is None:
                action[hit] = result.adv_action
                clean_action[hit] = result.clean_action
            else:
                with torch.no_grad():
                    clean_action[hit] = self.policy(seen[hit]).argmax(dim=1)
                    action[hit] = self.policy(result.adv).argmax(dim=1)
            seen[hit] = result.adv
            source_success[hit] = result.success
            norms[:, hit] = torch.stack([result.linf, result.l2, result.l0]).to(norms.dtype)
            if result.target is not None:
                target[hit] = result.target
        if not attacked.all():
            if logits is None or self.source is not None:
                with torch.no_grad():
                    logits = self.policy(seen[~hit])
            else:
                logits = logits[~hit]
            action[~hit] = clean_action[~hit] = logits.argmax(dim=1)
        if self.frame_surface:
            self.seen[envs_t] = seen
        linf, l2, l0 = norms.cpu().numpy()
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
        )
