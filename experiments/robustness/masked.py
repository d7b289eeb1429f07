"""Three policies that hide their gradient in front of `pong-dqn`, as TorchScript files that
`rlattack robustness --agent torch:PATH` takes (as a user's own defended model would come).

    python experiments/robustness/masked.py OUT_DIR

- shattered: the observation rounded to gray levels first (the same actions on every frame the
  env gives; the input gradient is exactly zero);
- stochastic: Gaussian noise of 0.5 gray levels on the input, drawn afresh at every call;
- vanishing: the Q-values times 1e6 (the same actions; float32's softmax is one-hot, so the
  cross-entropy's gradient is exactly zero).

Each is as fragile as `pong-dqn`: an attack crafted on `pong-dqn` and shown to it changes what
it does, and the robustness verdict must say so (docs/robustness.md, "When not to trust the number").
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from rlattack.observations import OBS_SHAPE
from rlattack.policies import Policy
from rlattack.zoo import load_victim


class Masked(nn.Module):
    """`policy` on 0..255 input (TorchScript's convention), behind one kind of masking."""

    def __init__(self, policy: Policy, kind: str) -> None:
        super().__init__()
        self.policy, self.kind = policy, kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "shattered":
            return self.policy(torch.round(x) / 255)
        if self.kind == "stochastic":
            return self.policy(x / 255 + 0.5 / 255 * torch.randn_like(x))
        return self.policy(x / 255) * 1e6


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    policy = load_victim("pong-dqn")
    example = torch.rand(2, *OBS_SHAPE) * 255
    for kind in ("shattered", "stochastic", "vanishing"):
        traced = torch.jit.trace(Masked(policy, kind), example, check_trace=False)
        traced.save(str(out / f"pong-dqn-{kind}.pt"))
        print(f"wrote {out / f'pong-dqn-{kind}.pt'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/masked"))
