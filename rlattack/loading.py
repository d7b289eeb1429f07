"""`load_policy`: one way in for every agent the command line names, above every loader."""

from __future__ import annotations

from pathlib import Path

import torch

from rlattack.errors import UserInputError
from rlattack.observations import OBS_SHAPE
from rlattack.policies import Policy, check_finite_weights
from rlattack.safetensors_agent import load_safetensors_agent
from rlattack.sb3 import load_sb3
from rlattack.zoo import load_victim


def load_torchscript(path: str | Path, device: str = "cpu") -> Policy:
    """A TorchScript module taking `(N, 4, 84, 84)` floats in [0, 255] and returning logits.

    `torch.jit.load` unpickles, so the file can run any code: `safetensors:PATH` runs none."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"no such TorchScript file: {path}")
    try:
        net = torch.jit.load(str(path), map_location=device)
        with torch.no_grad():
            out = net(torch.zeros(1, *OBS_SHAPE, device=device))
    except Exception as e:  # TorchScript raises RuntimeError and friends for a damaged file
        raise UserInputError(f"cannot load TorchScript module {path}: {e}") from None
    if out.ndim != 2:
        raise UserInputError(f"{path} returns shape {tuple(out.shape)}, expected (N, actions)")
    return Policy(net, n_actions=out.shape[1], name=f"torch:{path.name}", outputs="unknown")


def load_policy(agent: str, device: str = "cpu") -> Policy:
    """Resolve the CLI's AGENT: a zoo name, `sb3:PATH.zip`, `safetensors:PATH` or `torch:PATH`."""
    if agent.startswith("sb3:"):
        policy = load_sb3(agent[4:], device)
    elif agent.startswith("safetensors:"):
        policy = load_safetensors_agent(agent.removeprefix("safetensors:"), device)
    elif agent.startswith("torch:"):
        policy = load_torchscript(agent[6:], device)
    else:
        policy = load_victim(agent, device)
    return check_finite_weights(policy)
