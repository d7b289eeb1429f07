"""Seeded draws on the device of the perturbed tensor."""

from __future__ import annotations

import torch

from rlattack.attacks.draws import Draws


def test_cpu_draws_are_those_of_a_seeded_cpu_generator() -> None:
    like = torch.zeros(3, dtype=torch.float64)
    draws = Draws(5)
    expected = torch.Generator().manual_seed(5)
    assert torch.equal(
        draws.uniform((4, 2), like), torch.rand((4, 2), generator=expected, dtype=torch.float64)
    )
    assert torch.equal(draws.normal((7,), like), torch.randn((7,), generator=expected, dtype=torch.float64))
    assert torch.equal(draws.integers(1, 6, 9, like.device), torch.randint(1, 6, (9,), generator=expected))


def test_draws_keep_the_dtype_and_device_and_repeat_with_the_seed() -> None:
    like = torch.zeros(2, dtype=torch.float32)
    a, b, c = Draws(1), Draws(1), Draws(2)
    u = a.uniform((100,), like)
    assert u.dtype == torch.float32 and u.device == like.device
    assert ((0 <= u) & (u < 1)).all()
    assert torch.equal(u, b.uniform((100,), like))
    assert not torch.equal(u, c.uniform((100,), like))
    assert not torch.equal(u, a.uniform((100,), like))  # the stream moves on
