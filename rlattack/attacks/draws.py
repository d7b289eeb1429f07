"""Seeded random draws made on the device of the tensors they perturb.

The noise baseline and random targets were drawn by a CPU generator and copied over: at K = 256
envs that is 7.2M floats a step from the host, which on a GPU costs more than the attack.
Random starts are drawn per sample instead, keyed by its values, so that a batch gives what its
samples give one by one (`rlattack.attacks.base.random_start`). `Draws` keeps one generator per
device, each seeded with the same seed, so draws stay on the device. On the CPU the numbers are those of
`torch.Generator().manual_seed(seed)`; a GPU's generator gives its own (reproducible) numbers.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Draws:
    """One seeded generator per device, created on first use."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = torch.Generator().initial_seed() if seed is None else seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def generator(self, device: torch.device) -> torch.Generator:
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def uniform(self, shape: tuple[int, ...] | torch.Size, like: Tensor) -> Tensor:
        """Floats in [0, 1) of `shape`, in `like`'s dtype, on its device."""
        return torch.rand(shape, generator=self.generator(like.device), dtype=like.dtype, device=like.device)

    def normal(self, shape: tuple[int, ...] | torch.Size, like: Tensor) -> Tensor:
        """Standard normal floats of `shape`, in `like`'s dtype, on its device."""
        return torch.randn(shape, generator=self.generator(like.device), dtype=like.dtype, device=like.device)

    def integers(self, low: int, high: int, n: int, device: torch.device) -> Tensor:
        """`n` integers in [low, high) on `device`."""
        return torch.randint(low, high, (n,), generator=self.generator(device), device=device)
