"""Untrusted files: an SB3 zip never has its pickles run, a safetensors agent runs nothing from
its file, damaged files are one line, zoo weights must match their recorded sha256, and a budget
above the [0, 1] scale is refused."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import pathlib
import pickle
import re
import shutil
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

import rlattack.zoo
from agents.export import bundle
from rlattack.attacks import AttackSpec
from rlattack.cli import main
from rlattack.errors import UserInputError
from rlattack.loading import load_policy
from rlattack.networks import nature_cnn
from rlattack.observations import OBS_SHAPE
from rlattack.safetensors_agent import save_safetensors_agent
from rlattack.sb3 import from_sb3_policy, load_sb3, sb3_class
from rlattack.weights import file_sha256
from rlattack.zoo import load_victim, victims

X = torch.rand(3, *OBS_SHAPE, generator=torch.Generator().manual_seed(0))
ALGORITHMS = ["dqn", "qrdqn", "ppo", "a2c", "trpo"]


class Touch:
    """A pickle that creates `marker` when it is unpickled: what a hostile zip could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (self.marker,))


def payload(marker: Path) -> str:
    """`Touch(marker)` as SB3 stores a pickled field: base64 text."""
    return base64.b64encode(pickle.dumps(Touch(marker))).decode()


def zip_data(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("data"))


def rewrite(src: Path, dst: Path, data: dict[str, Any] | None = None, policy: bytes | None = None) -> Path:
    """A copy of the SB3 zip `src` with its `data` record or its `policy.pth` replaced (b"": left out)."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w") as new:
        for item in old.infolist():
            raw = old.read(item.filename)
            if item.filename == "data" and data is not None:
                raw = json.dumps(data).encode()
            if item.filename == "policy.pth" and policy is not None:
                raw = policy
            if raw:
                new.writestr(item, raw)
    return dst


def with_payloads(data: dict[str, Any], marker: Path) -> dict[str, Any]:
    """`data` with every pickled field (spaces, policy class, schedules, ...) replaced by the payload."""
    hostile = json.loads(json.dumps(data))
    replaced = [field for field in hostile.values() if isinstance(field, dict) and ":serialized:" in field]
    for field in replaced:
        field[":serialized:"] = payload(marker)
    assert len(replaced) >= 3  # at least the two spaces and the policy class
    return hostile


def refusal(path: Path) -> str:
    """The one line `load_sb3` refuses `path` with; no advice to turn off PyTorch's safe reader."""
    with pytest.raises(UserInputError) as refused:
        load_sb3(path)
    message = str(refused.value)
    assert "\n" not in message and "weights_only" not in message
    return message


@pytest.mark.parametrize("name", ALGORITHMS)
def test_a_payload_in_every_pickled_field_never_runs_and_the_model_still_loads(
    sb3_models, tmp_path, name
) -> None:
    marker = tmp_path / "ran"
    hostile = rewrite(
        sb3_models[name], tmp_path / "hostile.zip", with_payloads(zip_data(sb3_models[name]), marker)
    )
    policy = load_sb3(hostile)
    assert torch.equal(policy(X), load_sb3(sb3_models[name])(X))
    assert not marker.exists()


def test_the_payload_runs_under_an_unpickling_loader(sb3_models, tmp_path) -> None:
    """The test above can fail: SB3's own `load` runs the very same payload."""
    marker = tmp_path / "ran"
    hostile = rewrite(
        sb3_models["dqn"], tmp_path / "hostile.zip", with_payloads(zip_data(sb3_models["dqn"]), marker)
    )
    with contextlib.suppress(Exception), warnings.catch_warnings():  # it fails later: no spaces left
        warnings.simplefilter("ignore")
        sb3_class("dqn").load(hostile, device="cpu")
    assert marker.exists()


def test_a_payload_in_policy_pth_is_refused_unrun(sb3_models, tmp_path) -> None:
    marker = tmp_path / "ran"
    buffer = io.BytesIO()
    torch.save({"q_net.q_net.0.weight": Touch(marker)}, buffer)
    hostile = rewrite(sb3_models["dqn"], tmp_path / "hostile.zip", policy=buffer.getvalue())
    assert "holds objects other than tensors" in refusal(hostile)
    assert not marker.exists()


def _only_pickled(field: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in field.items() if k in (":type:", ":serialized:")}


CUSTOM = {":type:": "<class 'dict'>", "features_extractor_class": "<class 'mine.Extractor'>"}

NEEDS_PICKLES = {
    "observation_space only pickled": (
        lambda d: d | {"observation_space": _only_pickled(d["observation_space"])},
        "observation_space has its shape only in pickled form",
    ),
    "action_space only pickled": (
        lambda d: d | {"action_space": _only_pickled(d["action_space"])},
        "action_space has its size only in pickled form",
    ),
    "bounds that vary": (
        lambda d: d | {"observation_space": d["observation_space"] | {"low": "[[[0 1 0 ... 0 0 0]]]"}},
        "observation_space bounds are not one uint8 number",
    ),
    "a custom features extractor": (
        lambda d: d | {"policy_kwargs": CUSTOM | {":serialized:": d["observation_space"][":serialized:"]}},
        r"features_extractor_class <class 'mine.Extractor'> is stored pickled \(known: NatureCNN\)",
    ),
    "net_arch only printed": (
        lambda d: d | {"policy_kwargs": {":type:": "<class 'dict'>", "net_arch": "(64, 64)"}},
        "policy_kwargs net_arch is stored only in pickled form",
    ),
    "a policy class of its own": (
        lambda d: d | {"policy_class": d["policy_class"] | {"__init__": "<function Mine.__init__ at 0x1>"}},
        "its policy Mine is not one of DQNPolicy, CnnPolicy, MultiInputPolicy",
    ),
}


@pytest.mark.parametrize("case", NEEDS_PICKLES)
def test_a_file_that_needs_its_pickles_is_refused_with_the_reason(sb3_models, tmp_path, case) -> None:
    change, reason = NEEDS_PICKLES[case]
    marker = tmp_path / "ran"
    hostile = change(with_payloads(zip_data(sb3_models["dqn"]), marker))
    path = rewrite(sb3_models["dqn"], tmp_path / "model.zip", hostile)
    message = refusal(path)
    assert message.startswith(f"cannot load SB3 model {path} without unpickling: ")
    assert re.search(reason, message), message
    assert not marker.exists()  # refusing does not unpickle either


def _saved(state: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def test_a_damaged_zip_is_one_line_without_advice_to_unpickle(sb3_models, tmp_path) -> None:
    clean = sb3_models["dqn"]
    raw = clean.read_bytes()
    for name, content in {"truncated": raw[: len(raw) // 2], "not a zip": b"PK\x03\x04 not really"}.items():
        path = tmp_path / f"{name}.zip"
        path.write_bytes(content)
        assert refusal(path).startswith(f"cannot read SB3 model {path}: "), name
    with zipfile.ZipFile(clean) as archive:
        state = torch.load(io.BytesIO(archive.read("policy.pth")), weights_only=True)
    first = next(iter(state))
    damaged = {
        "no policy.pth": (b"", "There is no item named 'policy.pth'"),
        "not a state dict": (_saved([state[first]]), "not a state dict of named tensors (found list)"),
        "garbage": (b"\x80\x02junk", "damaged or not a PyTorch file"),
        "cut short": (_saved(state)[:2000], "damaged or not a PyTorch file"),
        "a tensor missing": (_saved({k: v for k, v in state.items() if k != first}), f"missing ['{first}']"),
        "a tensor too many": (_saved(state | {"extra": state[first]}), "unexpected ['extra']"),
        "a tensor misshapen": (_saved(state | {first: state[first][:1]}), "size mismatch"),
    }
    for name, (policy, reason) in damaged.items():
        assert reason in refusal(rewrite(clean, tmp_path / f"{name}.zip", policy=policy)), name
    path = tmp_path / "text.zip"
    with zipfile.ZipFile(clean) as old, zipfile.ZipFile(path, "w") as new:
        for item in old.infolist():
            new.writestr(item, b"{not json" if item.filename == "data" else old.read(item.filename))
    assert "its data record is not JSON" in refusal(path)


def test_policy_kwargs_kept_pickled_load_from_their_printed_form_exactly(tmp_path) -> None:
    from stable_baselines3 import PPO

    from agents.envs import Sb3VecEnv

    env = Sb3VecEnv("pong", num_envs=1, seed=0)
    kwargs = {
        "activation_fn": torch.nn.ReLU,
        "net_arch": {"pi": [32], "vf": [16]},
        "share_features_extractor": False,
        "features_extractor_kwargs": {"features_dim": 64},
    }
    PPO("CnnPolicy", env, n_steps=8, batch_size=8, seed=0, device="cpu", policy_kwargs=kwargs).save(
        tmp_path / "ppo.zip"
    )
    env.close()
    assert ":serialized:" in zip_data(tmp_path / "ppo.zip")["policy_kwargs"]  # ReLU is no JSON
    theirs = from_sb3_policy("ppo", PPO.load(tmp_path / "ppo.zip", device="cpu").policy, "sb3")
    assert torch.equal(load_sb3(tmp_path / "ppo.zip")(X), theirs(X))


def _victim_copy(zoo: Path, name: str = "pong-dqn") -> Path:
    shutil.copytree(rlattack.zoo.ZOO / name, zoo / name)
    return zoo / name


def test_zoo_weights_with_one_byte_flipped_are_refused(tmp_path, monkeypatch) -> None:
    folder = _victim_copy(tmp_path)
    monkeypatch.setattr(rlattack.zoo, "ZOO", tmp_path)
    intact = load_victim("pong-dqn")(X)
    weights = folder / "weights.safetensors"
    damaged = bytearray(weights.read_bytes())
    header_end = 8 + int.from_bytes(damaged[:8], "little")
    start = json.loads(damaged[8:header_end])["q_net.q_net.0.bias"]["data_offsets"][0]
    damaged[header_end + start + 3] ^= 0x40  # the exponent of an output bias: still valid safetensors
    weights.write_bytes(bytes(damaged))
    with pytest.raises(UserInputError) as refused:
        load_victim("pong-dqn")
    assert (
        str(refused.value)
        == "weights of zoo victim pong-dqn do not match their recorded sha256 (damaged file?)"
    )
    meta = json.loads((folder / "meta.json").read_text())
    del meta["weights_sha256"]  # a victim still in training records none: it loads, damage unseen
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    assert not torch.equal(load_victim("pong-dqn")(X), intact)


def test_every_bundled_victim_records_the_sha256_of_its_weights() -> None:
    found = {v.name: v.meta.get("weights_sha256") for v in victims()}
    assert found and found == {v.name: file_sha256(v.path / "weights.safetensors") for v in victims()}


def test_bundling_a_run_records_its_weights_sha256(tmp_path, monkeypatch) -> None:
    source = rlattack.zoo.ZOO / "pong-dqn"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copyfile(source / "weights.safetensors", run_dir / "weights.safetensors")
    shutil.copyfile(source / "curve.csv", run_dir / "curve.csv")
    (run_dir / "run.json").write_text(json.dumps(json.loads((source / "meta.json").read_text())))
    monkeypatch.setattr(rlattack.zoo, "ZOO", tmp_path / "zoo")
    meta = bundle(run_dir, tmp_path / "zoo" / "pong-dqn")
    assert meta["weights_sha256"] == file_sha256(run_dir / "weights.safetensors")
    assert json.loads((tmp_path / "zoo" / "pong-dqn" / "meta.json").read_text()) == meta
    load_victim("pong-dqn")


@pytest.mark.parametrize("norm", ["inf", "2", "1"])
@pytest.mark.parametrize("eps", [1e9, "1.001", "256/255"])
def test_a_budget_above_one_is_refused_in_every_norm(norm, eps) -> None:
    with pytest.raises(UserInputError) as refused:
        AttackSpec.parse(name="fgsm", eps=eps, norm=norm)
    message = str(refused.value)
    assert (
        message.startswith(f"eps {eps!r} is above 1: budgets are on the [0, 1] scale") and "\n" not in message
    )
    assert "in every norm" in message
    assert AttackSpec.parse(name="fgsm", eps="255/255", norm=norm).eps == 1.0  # the whole range is allowed


def test_eval_refuses_eps_above_one_with_status_2(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["rlattack", "eval", "--agent", "x", "--attack", "fgsm", "--eps", "1e9"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("rlattack: error: eps '1e9' is above 1") and err.count("\n") == 1


A3C = {"algorithm": "a3c", "network": "nature-cnn", "n_actions": "6"}


def _nature_cnn_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return dict(nature_cnn(6).state_dict())


WEIGHTS_ONLY_REFUSALS = {
    "no metadata": (None, None, "lacks the metadata algorithm, network, n_actions"),
    "some metadata": ({"algorithm": "a3c"}, None, "lacks the metadata network, n_actions"),
    "an unknown algorithm": (A3C | {"algorithm": "sac"}, None, "unknown algorithm 'sac' (known: a3c,"),
    "an unknown network": (
        A3C | {"network": "resnet"},
        None,
        "unknown network 'resnet' (known: nature-cnn, small-cnn, mlp)",
    ),
    "a network SB3 does not build": (
        A3C | {"algorithm": "dqn", "network": "mlp"},
        None,
        "SB3's dqn CnnPolicy is a nature-cnn, not 'mlp'",
    ),
    "actions not a number": (
        A3C | {"n_actions": "six"},
        None,
        "n_actions 'six' is not a whole number from 1 to 18",
    ),
    "too many actions": (A3C | {"n_actions": "99999999999"}, None, "from 1 to 18 (Atari's full action set)"),
    "no actions": (A3C | {"n_actions": "0"}, None, "n_actions '0' is not a whole number from 1 to 18"),
    "kwargs not JSON": (A3C | {"network_kwargs": "{"}, None, "network_kwargs '{' is not a JSON object"),
    "kwargs for a3c": (
        A3C | {"network_kwargs": '{"hidden": 3}'},
        None,
        "a3c networks take no network_kwargs",
    ),
    "an unread SB3 keyword": (
        A3C | {"algorithm": "dqn", "network_kwargs": '{"features_extractor_class": "Mine"}'},
        None,
        "network_kwargs features_extractor_class is not one of net_arch, ",
    ),
    "a tensor missing": (
        A3C,
        lambda s: {k: v for k, v in s.items() if k != "value_head.bias"},
        "missing ['value_head.bias']",
    ),
    "a tensor too many": (A3C, lambda s: s | {"extra": torch.zeros(1)}, "unexpected ['extra']"),
    "a tensor misshapen": (
        A3C,
        lambda s: s | {"policy_head.bias": torch.zeros(4)},
        "size mismatch for policy_head.bias",
    ),
    "fewer actions than its tensors": (
        A3C | {"n_actions": "4"},
        None,
        "size mismatch for policy_head.weight",
    ),
}


@pytest.mark.parametrize("case", WEIGHTS_ONLY_REFUSALS)
def test_a_weights_only_agent_that_does_not_describe_its_network_is_one_line(tmp_path, case) -> None:
    metadata, change, reason = WEIGHTS_ONLY_REFUSALS[case]
    path = tmp_path / "agent.safetensors"
    state = _nature_cnn_state()
    save_file(change(state) if change else state, str(path), metadata=metadata)
    with pytest.raises(UserInputError) as refused:
        load_policy(f"safetensors:{path}")
    message = str(refused.value)
    assert message.startswith(f"cannot load safetensors agent {path}: ") and "\n" not in message
    assert reason in message, message


def test_a_weights_only_file_that_is_missing_or_foreign_is_one_line(tmp_path) -> None:
    with pytest.raises(UserInputError, match=f"^no such safetensors agent file: {tmp_path / 'none'}$"):
        load_policy(f"safetensors:{tmp_path / 'none'}")
    save_safetensors_agent(nature_cnn(6), tmp_path / "whole.safetensors", algorithm="a3c", n_actions=6)
    raw = (tmp_path / "whole.safetensors").read_bytes()
    for name, content in {"junk": b"not a safetensors file", "cut short": raw[:-100], "empty": b""}.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(UserInputError) as refused:
            load_policy(f"safetensors:{path}")
        assert str(refused.value).startswith(
            f"cannot load safetensors agent {path}: damaged or not a safetensors file ("
        ), name


def test_a_weights_only_agent_loads_without_unpickling_anything(tmp_path, monkeypatch) -> None:
    path = tmp_path / "agent.safetensors"
    save_safetensors_agent(nature_cnn(6), path, algorithm="a3c", n_actions=6)

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a loader that can run code was called")

    for module, name in [(pickle, "load"), (pickle, "loads"), (torch, "load"), (torch.jit, "load")]:
        monkeypatch.setattr(module, name, refuse)
    assert load_policy(f"safetensors:{path}").n_actions == 6


def test_a_weights_only_agent_with_other_actions_than_its_game_is_refused_with_status_2(
    tmp_path, monkeypatch, capsys
) -> None:
    path = tmp_path / "four.safetensors"
    save_safetensors_agent(nature_cnn(4), path, algorithm="a3c", n_actions=4)
    args = ["eval", "--agent", f"safetensors:{path}", "--game", "pong", "--episodes", "1", "--no-progress"]
    monkeypatch.setattr(sys, "argv", ["rlattack", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert (
        err
        == "rlattack: error: action-space mismatch: safetensors:four.safetensors has 4 actions, pong has 6\n"
    )
