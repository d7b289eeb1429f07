"""Reading Stable-Baselines3 `.zip` files without unpickling anything.

SB3's own `load` unpickles the zip's spaces, schedules and policy class, and a pickle can run any
code. Here the network is built afresh from the plain JSON fields of `data`, and `policy.pth` is
read by PyTorch's tensors-only reader into it.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from torch import Tensor, nn

from rlattack.errors import UserInputError
from rlattack.policies import Policy
from rlattack.weights import load_torch_state


class _QValues(nn.Module):
    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.q_net = policy.q_net

    def forward(self, obs: Tensor) -> Tensor:
        return self.q_net(obs)


class _QuantileMean(nn.Module):
    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.quantile_net = policy.quantile_net

    def forward(self, obs: Tensor) -> Tensor:
        return self.quantile_net(obs).mean(dim=1)


class _ActorLogits(nn.Module):
    """Raw action logits (before the softmax) of an SB3 actor-critic policy."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: Tensor) -> Tensor:
        from stable_baselines3.common.preprocessing import preprocess_obs

        p = self.policy
        # Not `p.extract_features`: without a shared extractor it runs the critic's too, as a pair.
        features = p.pi_features_extractor(preprocess_obs(obs, p.observation_space, p.normalize_images))
        return p.action_net(p.mlp_extractor.forward_actor(features))


Q_VALUE_ALGORITHMS = ("dqn", "qrdqn")
"""Algorithms whose networks output Q-values (no distribution to sample actions from)."""


def _sb3_head(algorithm: str, policy: nn.Module) -> nn.Module:
    if algorithm == "dqn":
        return _QValues(policy)
    if algorithm == "qrdqn":
        return _QuantileMean(policy)
    return _ActorLogits(policy)


def _read_zip(path: Path, *names: str) -> list[bytes]:
    """The named members of an SB3 `.zip`, as bytes; one line for a damaged or foreign file."""
    try:
        with zipfile.ZipFile(path) as archive:
            return [archive.read(name) for name in names]
    except KeyError as e:
        raise UserInputError(f"cannot read SB3 model {path}: {e.args[0]}") from None
    except (OSError, EOFError, RuntimeError, ValueError, zipfile.BadZipFile, zlib.error) as e:
        raise UserInputError(f"cannot read SB3 model {path}: {e}") from None


def _sb3_data(path: Path) -> dict[str, Any]:
    """The zip's `data` record as JSON; its pickled fields stay base64 text and are never decoded."""
    try:
        data = json.loads(_read_zip(path, "data")[0])
    except ValueError as e:
        raise UserInputError(f"cannot read SB3 model {path}: its data record is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"cannot read SB3 model {path}: its data record is not a JSON object")
    return data


def _algorithm_of(data: dict[str, Any], path: Path) -> str:
    policy_class = data.get("policy_class")
    module = policy_class.get("__module__", "") if isinstance(policy_class, dict) else ""
    if module == "stable_baselines3.dqn.policies":
        return "dqn"
    if module == "sb3_contrib.qrdqn.policies":
        return "qrdqn"
    if module == "stable_baselines3.common.policies":
        if "cg_max_steps" in data:
            return "trpo"
        return "ppo" if "clip_range" in data else "a2c"
    raise UserInputError(f"unsupported SB3 policy {module or '?'} in {path}")


def sb3_algorithm(path: Path) -> str:
    """Which algorithm saved this SB3 `.zip`, read from its `data` record (no code is run)."""
    return _algorithm_of(_sb3_data(path), path)


def sb3_class(algorithm: str) -> Any:
    """The SB3 algorithm class; its `policy_aliases["CnnPolicy"]` is the network it trains."""
    import sb3_contrib
    import stable_baselines3

    classes = {
        "dqn": stable_baselines3.DQN,
        "a2c": stable_baselines3.A2C,
        "ppo": stable_baselines3.PPO,
        "qrdqn": sb3_contrib.QRDQN,
        "trpo": sb3_contrib.TRPO,
    }
    if algorithm not in classes:
        raise UserInputError(f"unknown algorithm {algorithm!r}; known: {', '.join(classes)}")
    return classes[algorithm]


PLAIN_KWARGS: dict[str, type | tuple[type, ...]] = {
    "net_arch": (list, dict),
    "features_extractor_kwargs": dict,
    "normalize_images": bool,
    "share_features_extractor": bool,
    "ortho_init": bool,
    "n_quantiles": int,
}
"""`policy_kwargs` that shape a network and are stored as plain JSON, taken as they are; the
optimizer's (`optimizer_class`, `optimizer_kwargs`) are left out: attacks never step it."""


def _named_classes(key: str) -> dict[str, type]:
    """Library classes a `policy_kwargs` entry may name by the text SB3 prints beside its pickle:
    a name is looked up here, never imported."""
    if key == "activation_fn":
        return {str(c): c for c in (nn.ReLU, nn.Tanh, nn.ELU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid)}
    if key == "features_extractor_class":
        from stable_baselines3.common.torch_layers import NatureCNN

        return {str(NatureCNN): NatureCNN}
    return {}


def _network_kwargs(field: Any) -> dict[str, Any]:
    """The network's keywords from the plain entries of `policy_kwargs`; ValueError for an entry
    that is neither plain JSON of its type nor a known class (a custom extractor, say)."""
    if not isinstance(field, dict):
        raise ValueError("policy_kwargs is not a JSON object")
    kwargs: dict[str, Any] = {}
    for key, value in field.items():
        if key in (":type:", ":serialized:", "optimizer_class", "optimizer_kwargs"):
            continue
        if classes := _named_classes(key):
            if not isinstance(value, str) or value not in classes:
                known = ", ".join(c.__name__ for c in classes.values())
                raise ValueError(f"policy_kwargs {key} {str(value)[:80]} is stored pickled (known: {known})")
            kwargs[key] = classes[value]
        elif key not in PLAIN_KWARGS:
            raise ValueError(f"policy_kwargs {key!r} is not among those read ({', '.join(PLAIN_KWARGS)})")
        elif not isinstance(value, PLAIN_KWARGS[key]) or (isinstance(value, bool) and key == "n_quantiles"):
            raise ValueError(f"policy_kwargs {key} is stored only in pickled form ({str(value)[:60]!r})")
        else:
            kwargs[key] = value
    return kwargs


def _plain_space(data: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    field = data.get(name)
    if not isinstance(field, dict) or not str(field.get(":type:")).endswith(f".{kind.lower()}.{kind}'>"):
        raise ValueError(
            f"{name} is not a {kind} space ({field.get(':type:') if isinstance(field, dict) else None})"
        )
    return field


def _integer(value: Any) -> int | None:
    """An int stored as a JSON number or printed (SB3 prints numpy ints)."""
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bound(value: Any, dtype: np.dtype) -> float:
    """A Box bound from its plain field: a number, or numpy's printout of an array whose values
    shown are all one number (numpy shows only a large array's edges; an image's are 0 and 255)."""
    shown: set[float] = set()
    try:
        text = value if isinstance(value, str) else repr(float(value))
        shown = {float(t) for t in re.sub(r"[\[\],]|\.\.\.", " ", text).split()}
    except (TypeError, ValueError):
        pass
    if len(shown) != 1 or (dtype.kind in "ui" and not next(iter(shown)).is_integer()):
        raise ValueError(f"observation_space bounds are not one {dtype} number in plain form")
    return shown.pop()


def _spaces_of(data: dict[str, Any]) -> tuple[spaces.Box, spaces.Discrete]:
    """Observation and action spaces built from the plain fields SB3 stores beside their pickles."""
    box = _plain_space(data, "observation_space", "Box")
    listed = box.get("_shape", box.get("shape"))
    shape = [_integer(n) for n in listed] if isinstance(listed, list) else []
    if not shape or not all(n is not None and n > 0 for n in shape):
        raise ValueError("observation_space has its shape only in pickled form")
    dtype = np.dtype(box["dtype"]) if box.get("dtype") in ("uint8", "float32", "float64") else None
    if dtype is None:
        raise ValueError("observation_space has no plain dtype uint8, float32 or float64")
    low = _bound(box["low_repr"] if box.get("low_repr") is not None else box.get("low"), dtype)
    high = _bound(box["high_repr"] if box.get("high_repr") is not None else box.get("high"), dtype)
    discrete = _plain_space(data, "action_space", "Discrete")
    n, start = _integer(discrete.get("n")), _integer(discrete.get("start", 0))
    if n is None or n < 1 or start is None:
        raise ValueError("action_space has its size only in pickled form")
    return spaces.Box(low, high, tuple(shape), dtype), spaces.Discrete(n, start=start)


def _network_class(aliases: dict[str, Any], data: dict[str, Any]) -> Any:
    """The policy class whose `__init__` SB3 printed beside the pickled `policy_class`, among the
    algorithm's own (CnnPolicy where none is printed)."""
    found = re.match(r"<function (\w+)\.__init__ ", str(data["policy_class"].get("__init__")))
    by_name = {c.__name__: c for c in aliases.values()}
    if found and found[1] not in by_name:
        raise ValueError(f"its policy {found[1]} is not one of {', '.join(by_name)}")
    return by_name[found[1]] if found else aliases["CnnPolicy"]


def load_sb3(path: str | Path, device: str = "cpu") -> Policy:
    """Load a DQN, QR-DQN, A2C, PPO or TRPO `.zip`, algorithm read from the file, unpickling nothing.

    SB3's own `load` unpickles the zip's spaces, schedules and policy class, and a pickle can run
    any code. Here the network is built afresh from the plain JSON fields of `data`, and
    `policy.pth` is read by PyTorch's tensors-only reader into it, every name exactly; a file whose
    network needs something stored only pickled is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"no such SB3 model file: {path}")
    data = _sb3_data(path)
    algorithm = _algorithm_of(data, path)
    try:
        build = _network_class(sb3_class(algorithm).policy_aliases, data)
        observation_space, action_space = _spaces_of(data)
        kwargs = _network_kwargs(data.get("policy_kwargs", {}))
    except ValueError as e:
        raise UserInputError(f"cannot load SB3 model {path} without unpickling: {e}") from None
    try:
        network = build(observation_space, action_space, lambda _: 0.0, **kwargs).to(device)
    except Exception as e:  # SB3 asserts and raises many types on keywords that do not fit
        reason = " ".join(str(e).split())
        raise UserInputError(
            f"cannot build the network of SB3 model {path}: {type(e).__name__}: {reason}"
        ) from None
    (raw,) = _read_zip(path, "policy.pth")
    try:
        load_torch_state(network, raw, device)
    except ValueError as e:
        raise UserInputError(f"cannot load policy.pth of SB3 model {path}: {e}") from None
    return from_sb3_policy(algorithm, network, name=f"sb3:{path.name}")


def from_sb3_policy(algorithm: str, policy: nn.Module, name: str) -> Policy:
    return Policy(
        _sb3_head(algorithm, policy),
        n_actions=int(policy.action_space.n),
        obs_shape=tuple(policy.observation_space.shape),
        input_scale=255.0,
        name=name,
        outputs="q-values" if algorithm in Q_VALUE_ALGORITHMS else "logits",
    )
