"""A network's weights as safetensors: what the zoo ships, loaded without running pickled code.

Each tensor is stored once: SB3 actor-critic policies reach one feature extractor under three
names (`features_extractor`, `pi_features_extractor`, `vf_features_extractor`), which safetensors
refuses to store as three tensors. DQN's target network, a copy needed only for training, is left out.
"""

from __future__ import annotations

from pathlib import Path

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


def save_weights(network: nn.Module, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in shipped_state(network).items()}
    atomic_write(path, lambda p: save_file(state, str(p)))


def load_weights(network: nn.Module, path: Path) -> None:
    """Load `path` into `network`; ValueError where the file does not fit it exactly."""
    state = load_file(str(path))
    expected = shipped_state(network)
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    if missing or unexpected:
        raise ValueError(f"weights do not fit the network: missing {missing}, unexpected {unexpected}")
    try:
        network.load_state_dict(state, strict=False)  # strict would ask for the aliases too
    except RuntimeError as e:  # shape mismatch
        raise ValueError(f"weights do not fit the network: {e}") from None
    if hasattr(network, "q_net_target"):  # DQN: the target network starts as a copy, as in training
        network.q_net_target.load_state_dict(network.q_net.state_dict())
