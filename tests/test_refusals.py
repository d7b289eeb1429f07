"""`rlattack robustness` refuses bad input before the first game, and a refused run leaves its
output folder as it was, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from rlattack.errors import UserInputError
from rlattack.grid.store import ResultStore
from rlattack.loading import load_policy
from tests.conftest import scripted_agent
from tests.test_cli import run


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def robustness(monkeypatch, agent: str, out: Path, *extra: str) -> int:
    args = ["robustness", "--agent", agent, "--game", "pong", "--eps", "1/255", "--episodes", "1"]
    return run(monkeypatch, *args, "--envs", "1", "--states", "8", "--out", str(out), "--no-progress", *extra)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--find-eps", "--tolerance", "abc"), "tolerance"),
        (("--find-eps", "--tolerance", "-1"), "tolerance"),
        (("--threshold", "nan"), "threshold"),
        (("--states", "1000000000"), "states"),
        (("--certify", "ibp"), "cannot bound a MaxPool2d layer"),
        (
            ("--certify", "none", "--surrogate", "seaquest-dqn"),
            "surrogate seaquest-dqn: action-space mismatch",
        ),
    ],
)
def test_bad_settings_are_refused_before_any_game(monkeypatch, capsys, tmp_path, extra, message):
    out, path = tmp_path / "out", tmp_path / "maxpool.pt"
    torch.manual_seed(0)  # a network interval bounds cannot go through (max pooling)
    torch.jit.script(nn.Sequential(nn.MaxPool2d(6), nn.Flatten(), nn.Linear(4 * 14 * 14, 6))).save(str(path))
    assert robustness(monkeypatch, f"torch:{path}", out, *extra) == 2
    assert message.lower() in capsys.readouterr().err.lower()
    assert not out.exists()


def test_a_refused_concurrent_run_leaves_the_folder_unchanged(
    monkeypatch, capsys, tmp_path, tiny_atari_agent
) -> None:
    out = tmp_path / "out"
    args = ("--certify", "none", "--attacks", "noise,mad", "--json", "-")
    assert robustness(monkeypatch, tiny_atari_agent, out, *args) == 0
    printed = capsys.readouterr()  # `--json -`: stdout holds the JSON alone, warnings go to stderr
    result = json.loads(printed.out)
    assert result["eps"][0]["attacks"].keys() == {"noise", "mad"} and "checks" in printed.err
    assert "convergence" in {c["name"] for c in result["checks"]}
    before = snapshot(out)
    with ResultStore(out).lock():
        code = robustness(monkeypatch, tiny_atari_agent, out, "--certify", "none", "--attacks", "noise,fgsm")
    assert code == 2 and snapshot(out) == before


def test_another_agents_results_are_not_taken_over(monkeypatch, capsys, tmp_path, tiny_atari_agent) -> None:
    out, config = tmp_path / "out", tmp_path / "grid.yaml"
    other = scripted_agent(tmp_path / "other.pt", n_actions=6, seed=1)
    config.write_text(f"agents: ['{other}']\ngames: [pong]\nattacks: [none]\nepisodes: 1\nenvs: 1\n")
    assert run(monkeypatch, "run", str(config), "--out", str(out), "--no-progress") == 0
    before = snapshot(out)
    assert robustness(monkeypatch, tiny_atari_agent, out, "--certify", "none", "--attacks", "noise") == 2
    assert "holds results of agents" in capsys.readouterr().err and snapshot(out) == before


def test_a_header_nested_too_deep_is_one_line(tmp_path) -> None:
    path = tmp_path / "deep.safetensors"
    deep = "[" * 100_000 + "]" * 100_000
    metadata = {"algorithm": "dqn", "network": "nature-cnn", "n_actions": "6", "network_kwargs": deep}
    save_file({"x": torch.zeros(1)}, str(path), metadata=metadata)
    with pytest.raises(UserInputError, match="network_kwargs"):
        load_policy(f"safetensors:{path}")


def test_a_damaged_run_file_says_what_the_docs_promise(tmp_path) -> None:
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(
        UserInputError, match=r"bad run file .*; repair it, or delete it to start its history anew"
    ):
        ResultStore(tmp_path).run_info()
