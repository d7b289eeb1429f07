"""Black-box attacks: the target answers actions only, and a substitute learns to imitate it.

The attacker never sees the target's weights, logits or gradients. Its substitute learns from
two sources, which can be combined (Papernot et al. 2017; Behzadan & Munir 2017):

1. imitation: the attacker watches the target play and records what it saw and which action it
   took (`watch`); where the attacker runs the game itself, sticky actions or random moves of its
   own make the games differ, which covers more than the few games a greedy target replays;
2. Jacobian-based dataset augmentation: each round adds `x + lambda * sign(d F_y(x) / dx)` for
   the points `x` of the set, `F` the substitute and `y` the target's answer on `x`, and asks the
   target to label them: the set doubles each round (`augment`).

Every observation the target acts on or labels is a query, counted by `Oracle` against a budget.
The substitute's own architecture differs from the target's by default (Mnih et al. 2013's
smaller CNN against the Nature CNN of the DQN victims). Its inputs follow the TorchScript
convention of `rlattack.policies` (floats 0..255), so a saved substitute is a `torch:PATH` agent.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.lr_scheduler import CosineAnnealingLR
from tqdm import tqdm

from rlattack.blackbox.data import unseen
from rlattack.blackbox.oracle import Oracle
from rlattack.errors import UserInputError
from rlattack.policies import Policy
from rlattack.rollout.watch import Dataset


class _Standardize(nn.Module):
    """0..255 floats in (what TorchScript agents take), centred and scaled out.

    Atari frames are mostly a constant background: without subtracting the mean frame, a CNN
    trained by imitation stays at chance (measured on Pong: 25% agreement, against 99% with it).
    The statistics are the attacker's own, from its training set (`Substitute.fit_statistics`).
    """

    def __init__(self, obs_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(obs_shape))
        self.register_buffer("scale", torch.tensor(255.0))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.scale


ARCHITECTURES: dict[str, tuple[Callable[[int], list[nn.Module]], int]] = {
    "mnih2013": (  # Mnih et al. 2013 (NIPS DQN): smaller than the victims' Nature CNN
        lambda c: [nn.Conv2d(c, 16, 8, 4), nn.ReLU(), nn.Conv2d(16, 32, 4, 2), nn.ReLU(), nn.Flatten()],
        256,
    ),
    "nature": (  # Mnih et al. 2015: the victims' own architecture
        lambda c: [
            nn.Conv2d(c, 32, 8, 4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, 1),
            nn.ReLU(),
            nn.Flatten(),
        ],
        512,
    ),
    "mlp": (lambda c: [nn.Flatten()], 256),  # for small observations and tests
}
"""Name -> (feature layers given the input channels, width of the hidden layer before the logits)."""


def build_network(arch: str, obs_shape: tuple[int, ...], n_actions: int, seed: int = 0) -> nn.Module:
    """A fresh substitute network: 0..255 floats `(N, *obs_shape)` -> logits `(N, n_actions)`."""
    if arch not in ARCHITECTURES:
        raise UserInputError(f"unknown substitute architecture {arch!r}: use {', '.join(ARCHITECTURES)}")
    layers, hidden = ARCHITECTURES[arch]
    torch.manual_seed(seed)
    features = nn.Sequential(_Standardize(obs_shape), *layers(obs_shape[0]))
    with torch.no_grad():
        width = features(torch.zeros(1, *obs_shape)).shape[1]
    return nn.Sequential(*features, nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, n_actions))


class Ensemble(nn.Module):
    """Substitutes trained side by side from different initialisations, answering as one: the
    mean of the members' log-probabilities. Their errors differ, so the ensemble agrees with the
    target more often than its members do (docs/blackbox.md: the ablation on Pong), and an attack crafted
    on it has to fool all of them (Liu et al. 2017).
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([F.log_softmax(member(x), dim=1) for member in self.members]).mean(0)


class Substitute:
    """A classifier of the target's actions, trained on what the oracle answered.

    With `members` > 1 it is an `Ensemble` of that many networks of `arch`, initialised with the
    seeds `seed`, `seed + 1`, ... (so substitutes of neighbouring seeds share members' starting
    points), all trained on the same batches.
    """

    def __init__(
        self,
        arch: str,
        obs_shape: tuple[int, ...],
        n_actions: int,
        lr: float = 1e-3,
        device: str = "cpu",
        seed: int = 0,
        members: int = 1,
        lr_schedule: str = "cosine",
    ) -> None:
        if members < 1:
            raise UserInputError(f"a substitute needs at least one member network, got {members}")
        if lr_schedule not in ("cosine", "constant"):
            raise UserInputError(f"the step-size schedule is cosine or constant, got {lr_schedule!r}")
        self.lr_schedule = lr_schedule
        self.lr = lr
        self.obs_shape = tuple(obs_shape)
        self.n_actions = n_actions
        self.device = device
        self.members = [build_network(arch, self.obs_shape, n_actions, seed + k) for k in range(members)]
        self.net = (self.members[0] if members == 1 else Ensemble(self.members)).to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.generator = np.random.default_rng(seed)

    @torch.no_grad()
    def fit_statistics(self, obs: np.ndarray, samples: int = 1000) -> None:
        """Centre inputs on the mean frame of (a sample of) `obs` and scale by their spread."""
        picked = obs[np.sort(self.generator.choice(len(obs), min(samples, len(obs)), replace=False))]
        x = self._batch(picked)
        mean = x.mean(0)
        scale = (x - mean).std().clamp_min(1.0)
        for member in self.members:
            member[0].mean.copy_(mean)
            member[0].scale.copy_(scale)

    def _batch(self, obs: np.ndarray) -> Tensor:
        return torch.as_tensor(obs, device=self.device).float()

    def fit(self, data: Dataset, epochs: int, batch_size: int = 128, progress: bool = True) -> float:
        """Train on `data` for `epochs` passes, continuing from the current weights. The `cosine`
        schedule takes the step size from `lr` to 0 over those passes (docs/blackbox.md: the
        ablation on Pong), `constant` keeps it. Returns the mean last-epoch loss per member."""
        self.net.train()
        batches = math.ceil(len(data) / batch_size)
        for group in self.optimizer.param_groups:  # each round's schedule starts again from `lr`
            group["lr"] = self.lr
        schedule = None
        if self.lr_schedule == "cosine":
            schedule = CosineAnnealingLR(self.optimizer, T_max=epochs * batches)
        bar = tqdm(total=epochs * batches, unit="batch", desc="training", disable=not progress, leave=False)
        for _ in range(epochs):
            order = self.generator.permutation(len(data))
            total = 0.0
            for i in range(0, len(data), batch_size):
                idx = np.sort(order[i : i + batch_size])  # sorted: faster gathers from the big array
                x = self._batch(data.obs[idx])
                labels = torch.as_tensor(data.actions[idx], device=self.device)
                loss = sum(F.cross_entropy(member(x), labels) for member in self.members)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                if schedule is not None:
                    schedule.step()
                total += loss.item() * len(idx) / len(self.members)
                bar.update(1)
        bar.close()
        self.net.eval()
        return total / len(data)

    @torch.no_grad()
    def predict(self, obs: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Greedy actions on uint8 observations."""
        return np.concatenate(
            [
                self.net(self._batch(obs[i : i + batch_size])).argmax(1).cpu().numpy()
                for i in range(0, len(obs), batch_size)
            ]
        )

    def agreement(self, data: Dataset) -> float:
        """Top-1 agreement with the target's actions on `data`."""
        return float((self.predict(data.obs) == data.actions).mean())

    def label_gradient_sign(self, obs: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """sign(d F_y(x) / dx) per input feature, F_y the substitute's output for the target's
        label: a logit, or for an ensemble the mean log-probability (a logit minus a log-sum-exp
        shared by all labels, averaged over members)."""
        signs = []
        for i in range(0, len(obs), batch_size):
            x = self._batch(obs[i : i + batch_size]).requires_grad_(True)
            y = torch.as_tensor(labels[i : i + batch_size], device=self.device)
            chosen = self.net(x).gather(1, y[:, None]).sum()  # samples are independent: one backward
            (grad,) = torch.autograd.grad(chosen, x)
            signs.append(grad.sign().to(torch.int16).cpu().numpy())
        return np.concatenate(signs)

    def policy(self, name: str = "substitute") -> Policy:
        """A frozen copy for attacks; the substitute itself can go on training."""
        return Policy(copy.deepcopy(self.net), self.n_actions, self.obs_shape, input_scale=255.0, name=name)

    def save(self, path: str) -> None:
        """TorchScript, loadable anywhere as the agent `torch:PATH`."""
        torch.jit.script(copy.deepcopy(self.net).cpu().eval()).save(path)


def augment(substitute: Substitute, data: Dataset, lam: float, oracle: Oracle) -> Dataset:
    """Papernot et al.'s augmentation: one new point per point of `data`, labelled by the oracle.

    `lam` is on the [0, 1] scale and may be negative (their periodic step); it moves each feature
    by round(|lam| * 255) gray levels, clipped to 0..255. With fewer queries left than points, a
    random subset of that size is augmented.
    """
    chosen = np.arange(len(data))
    if oracle.remaining is not None and oracle.remaining < len(data):
        chosen = np.sort(substitute.generator.choice(len(data), oracle.remaining, replace=False))
    step = round(lam * 255)
    new = np.empty((len(chosen), *data.obs.shape[1:]), dtype=np.uint8)
    for i in range(0, len(chosen), 1024):  # bounded memory: int16 copies of a slice at a time
        part = chosen[i : i + 1024]
        sign = substitute.label_gradient_sign(data.obs[part], data.actions[part])
        new[i : i + len(part)] = np.clip(data.obs[part].astype(np.int16) + step * sign, 0, 255)
    return Dataset(new, oracle(new))


@dataclass
class Round:
    """What one round of substitute training ended with."""

    round: int
    points: int
    queries: int
    agreement: float | None
    """top-1 agreement on the held-out states that are not in the training set (None: all are)"""
    agreement_all: float
    """the same on every held-out state, repeats of training states included"""
    loss: float
    held_out: int
    """how many held-out states that was (the others repeat a training state byte for byte)"""


def train_substitute(
    substitute: Substitute,
    oracle: Oracle,
    seed_set: Dataset,
    holdout: Dataset,
    rounds: int = 0,
    lam: float = 0.1,
    tau: int = 2,
    epochs: int = 8,
    batch_size: int = 128,
    progress: bool = True,
    after_round: Callable[[Substitute, Round], None] | None = None,
) -> list[Round]:
    """Train on `seed_set`, then `rounds` times augment and train again; agreement on the states
    of `holdout` that are not in the training set.

    The step is `lam * (-1) ** (round // tau)` (Papernot et al.'s periodic step size). Rounds stop
    early when the oracle's budget is spent. `after_round` sees each finished round (to save it).
    """
    if rounds < 0 or tau < 1 or epochs < 1:
        raise UserInputError(f"need rounds >= 0, tau >= 1 and epochs >= 1 (got {rounds}, {tau}, {epochs})")
    data, history = seed_set, []
    substitute.fit_statistics(seed_set.obs)
    for r in range(rounds + 1):
        if r > 0:
            if oracle.remaining == 0:
                break
            data = data + augment(substitute, data, lam * (-1) ** ((r - 1) // tau), oracle)
        loss = substitute.fit(data, epochs, batch_size, progress)
        fresh = unseen(holdout, data)
        agreement = substitute.agreement(fresh) if len(fresh) else None
        done = Round(r, len(data), oracle.queries, agreement, substitute.agreement(holdout), loss, len(fresh))
        history.append(done)
        if after_round is not None:
            after_round(substitute, done)
    return history
