"""The observation contract every policy, attack and env of rlattack shares.

A policy sees 4 stacked 84x84 grayscale frames as uint8 `(4, 84, 84)`, built like the classic
`NoFrameskip-v4` pipeline (frame skip 4 with max-pool, up to 30 no-op starts, no sticky actions);
attacks work on the same arrays as floats in [0, 1]. These numbers live here, apart from
`rlattack.envs`, so that attacks and policies can be used without the emulator installed.
"""

from __future__ import annotations

FRAME_SKIP = 4
NOOP_MAX = 30
STACK = 4
SIZE = 84
MAX_FRAMES = 108_000
OBS_SHAPE = (STACK, SIZE, SIZE)
