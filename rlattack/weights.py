"""A network's weights, loaded without running pickled code: safetensors for the zoo, PyTorch's
`weights_only` reader for an SB3 zip's `policy.pth`.

Each tensor is stored once: SB3 actor-critic policies reach one feature extractor under three
names (`features_extractor`, `pi_features_extractor`, `vf_features_extractor`), which safetensors
refuses to store as three tensors. DQN's target network, a copy needed only for training, is left out.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from rlattack.files import atomic_write

NOT_SHIPPED = ("q_net_target.",)


def shipped_state(network: nn.Module) -> dict[str, Tensor]:
    """The state dict with every shared tensor under its first name only and no target network."""
    state: dict[str, Tensor] = {}
    seen: set[int] = set()
    for name, tensor in network.state_dict().items():
        if name.startswith(NOT_SHIPPED) or tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        state[name] = tensor
    return state


def save_weights(network: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write the shipped state; `metadata` is text the file's header carries beside the tensors."""
    state = {k: v.detach().cpu().contiguous() for k, v in shipped_state(network).items()}
    atomic_write(path, lambda p: save_file(state, str(p), metadata=metadata))


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file: what a zoo victim's `meta.json` records for its weights."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fit(network: nn.Module, state: dict[str, Tensor], expected: set[str], strict: bool) -> None:
    """Load `state` into `network` when its names are exactly `expected`; ValueError otherwise."""
    missing = sorted(expected - state.keys())
    unexpected = sorted(state.keys() - expected)
    if missing or unexpected:
        raise ValueError(f"weights do not fit the network: missing {missing}, unexpected {unexpected}")
    try:
        network.load_state_dict(state, strict=strict)
    except RuntimeError as e:  # shape mismatch; PyTorch words it over several lines
        raise ValueError(f"weights do not fit the network: {' '.join(str(e).split())}") from None


def load_weights(network: nn.Module, path: Path) -> None:
    """Load `path` into `network`; ValueError where the file does not fit it exactly."""
    fit_weights(network, load_file(str(path)))


def fit_weights(network: nn.Module, state: dict[str, Tensor]) -> None:
    """Load `state`, holding exactly the names `save_weights` writes, into `network`; ValueError otherwise."""
    _fit(network, state, set(shipped_state(network)), strict=False)  # strict would ask for the aliases
    if hasattr(network, "q_net_target"):  # DQN: the target network starts as a copy, as in training
        network.q_net_target.load_state_dict(network.q_net.state_dict())


def load_torch_state(network: nn.Module, raw: bytes, device: str = "cpu") -> None:
    """Load a `torch.save`d state dict (an SB3 zip's `policy.pth`) into `network`, every name of
    the network's own state dict and no other; ValueError, one line, where it cannot.

    PyTorch's `weights_only` reader rebuilds tensors and plain containers only, so a file that
    holds anything else is refused rather than unpickled.
    """
    try:
        state = torch.load(io.BytesIO(raw), weights_only=True, map_location=device)
    except Exception as e:  # damaged archives raise RuntimeError, struct.error, EOFError, ...
        if type(e).__name__ == "UnpicklingError" or "weights_only" in str(e):  # advice not passed on
            raise ValueError("it holds objects other than tensors, which are never unpickled") from None
        reason = str(e).split(". ")[0].splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"it is damaged or not a PyTorch file ({reason})") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()
    ):
        raise ValueError(f"it is not a state dict of named tensors (found {type(state).__name__})")
    _fit(network, state, set(network.state_dict()), strict=True)
