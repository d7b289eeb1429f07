"""The `rlattack` command end to end: the contract's JSON fields and status 2 on bad input."""

from __future__ import annotations

import json
import os
import re
import sys

import pytest
import torch

from rlattack.cli import main

SUMMARY_FIELDS = {
    "return_mean",
    "return_std",
    "episodes",
    "action_change_rate",
    "linf_mean",
    "l2_mean",
    "l0_mean",
    "steps_per_s",
}


def run(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["rlattack", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code or 0


def test_eval_on_pong_through_the_vector_env(monkeypatch, sb3_models, tmp_path, capsys) -> None:
    out = tmp_path / "out.json"
    code = run(
        monkeypatch,
        "eval",
        "--agent",
        f"sb3:{sb3_models['dqn']}",
        "--game",
        "pong",
        "--attack",
        "fgsm",
        "--norm",
        "inf",
        "--eps",
        "0.004",
        "--episodes",
        "2",
        "--envs",
        "2",
        "--schedule",
        "every:2",
        "--json",
        str(out),
        "--no-progress",
    )
    assert code == 0
    payload = json.loads(out.read_text())
    assert SUMMARY_FIELDS <= payload["summary"].keys()
    assert payload["summary"]["episodes"] == 2 and len(payload["episodes"]) == 2
    assert payload["summary"]["linf_mean"] == pytest.approx(0.004, rel=1e-4)
    assert payload["config"]["attack"] == "fgsm"
    assert "fgsm" in capsys.readouterr().out


def test_zoo_lists(monkeypatch, capsys) -> None:
    assert run(monkeypatch, "zoo") == 0
    assert "rlattack zoo" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agent", "no-such-victim"], "unknown agent 'no-such-victim'"),
        (["--agent", "sb3:{dqn}", "--game", "Pongg"], "unknown Atari game 'Pongg'"),
        (["--agent", "sb3:{dqn}", "--game", "pong", "--attack", "fgsm", "--eps", "-0.1"], "eps must be"),
        (["--agent", "sb3:{dqn}", "--game", "pong", "--attack", "fgsm", "--eps", "nan"], "eps must be"),
        (["--agent", "sb3:{junk}", "--game", "pong"], "cannot read SB3 model"),
        (["--agent", "sb3:{missing}", "--game", "pong"], "no such SB3 model file"),
        (["--agent", "sb3:{dqn}", "--game", "breakout"], "action-space mismatch"),
        (["--agent", "sb3:{dqn}"], "--game is needed"),
        (
            ["--agent", "sb3:{dqn}", "--game", "pong", "--attack", "fgsm", "--norm", "3"],
            "'--norm': '3' is not one of",
        ),
        (
            ["--agent", "sb3:{dqn}", "--game", "pong", "--attack", "deepfool"],
            "'--attack': 'deepfool' is not one of",
        ),
        (
            ["--agent", "sb3:{dqn}", "--game", "pong", "--envs", "0"],
            "--envs: Input should be greater than or equal to 1",
        ),
        (
            ["--agent", "sb3:{dqn}", "--game", "pong", "--steps", "0"],
            "--steps: Input should be greater than or equal to 1",
        ),
        (
            ["--agent", "sb3:{dqn}", "--game", "pong", "--attack", "pgd", "--norm", "1"],
            "PGD supports norms inf and 2",
        ),
        (["--agent", "sb3:{dqn}", "--game", "pong", "--target", "nobody"], "bad target 'nobody'"),
        (["--agent", "sb3:{dqn}", "--game", "pong", "--act", "sample"], "outputs Q-values"),
        (["--agent", "sb3:{a2c}", "--game", "pong", "--act", "softmax"], "'--act': 'softmax' is not one of"),
        (["--agent", "sb3:{dqn}", "--game", "pong", "--bogus"], "No such option: --bogus"),
    ],
)
def test_bad_input_is_one_line_and_status_2(monkeypatch, sb3_models, tmp_path, capsys, args, message):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"\x00" * 10)
    paths = {
        "dqn": sb3_models["dqn"],
        "a2c": sb3_models["a2c"],
        "junk": junk,
        "missing": tmp_path / "missing.zip",
    }
    out = tmp_path / "never.json"
    args = [a.format(**paths) for a in args]
    assert run(monkeypatch, "eval", *args, "--episodes", "1", "--json", str(out), "--no-progress") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and err.startswith("rlattack: error:")
    assert not out.exists() and not list(tmp_path.glob(".never*"))


def test_threads_apply_to_every_command(monkeypatch, capsys) -> None:
    torch.set_num_threads(1)
    try:
        assert run(monkeypatch, "--threads", "2", "zoo") == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    assert run(monkeypatch, "--threads", "0", "zoo") == 2
    assert "Invalid value for '--threads'" in capsys.readouterr().err


def test_unparseable_option_exits_2(monkeypatch, capsys) -> None:
    assert run(monkeypatch, "eval", "--agent", "x", "--eps", "lots") == 2
    assert capsys.readouterr().err == "rlattack: error: eps 'lots' is not a number or a fraction like 2/255\n"
    assert run(monkeypatch, "eval", "--agent", "x", "--episodes", "many") == 2
    err = capsys.readouterr().err
    assert err.startswith("rlattack: error: Invalid value for '--episodes'") and err.count("\n") == 1


@pytest.mark.slow  # 11 s: two whole games
def test_eps_in_gray_levels_is_the_same_budget(monkeypatch, sb3_models, tmp_path) -> None:
    out = {}
    for eps in ("2/255", str(2 / 255)):
        path = tmp_path / f"{len(out)}.json"
        args = ["eval", "--agent", f"sb3:{sb3_models['dqn']}", "--game", "pong", "--attack", "fgsm"]
        assert (
            run(monkeypatch, *args, "--eps", eps, "--episodes", "1", "--json", str(path), "--no-progress")
            == 0
        )
        out[eps] = json.loads(path.read_text())
    first, second = out.values()
    assert first["config"]["eps"] == second["config"]["eps"] == 2 / 255
    assert first["summary"]["linf_mean"] == pytest.approx(2 / 255, rel=1e-6)


@pytest.mark.parametrize(
    "attack",
    [
        ["--attack", "pgd", "--eps", "0.004", "--steps", "3", "--schedule", "every:100"],
        ["--attack", "jsma", "--theta", "1", "--gamma", "0.001", "--schedule", "every:100"],
        ["--attack", "fgsm", "--eps", "0.004", "--target", "least-likely", "--schedule", "timed:0.5"],
    ],
)
def test_pgd_jsma_and_timed_attacks_run_from_the_command_line(monkeypatch, sb3_models, tmp_path, attack):
    out = tmp_path / "out.json"
    args = ["eval", "--agent", f"sb3:{sb3_models['dqn']}", "--game", "pong", *attack]
    assert run(monkeypatch, *args, "--episodes", "1", "--json", str(out), "--no-progress") == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["episodes"] == 1 and summary["attacked_fraction"] < 1
    assert (summary["target_rate"] is None) == (attack[1] == "pgd" or summary["attacked_steps"] == 0)


def test_compare_writes_its_table_and_plot(monkeypatch, tiny_atari_agent, tmp_path, capsys) -> None:
    args = ["--agent", tiny_atari_agent, "--game", "pong", "--eps", "0.002", "--eps", "0.02"]
    args += ["--episodes", "1", "--envs", "1", "--act", "sample", "--out", str(tmp_path), "--no-progress"]
    assert run(monkeypatch, "compare", *args) == 0
    payload = json.loads((tmp_path / "compare.json").read_text())
    assert payload["act"] == "sample"
    assert [row["setting"] for row in payload["rows"]] == [
        "clean",
        "fgsm Linf eps=0.002",
        "fgsm Linf eps=0.02",
    ]
    assert (
        payload["rows"][0]["summary"]["attacked_steps"] == 0 < payload["rows"][2]["summary"]["attacked_steps"]
    )
    assert (tmp_path / "compare.png").stat().st_size > 0
    assert "actions sampled" in capsys.readouterr().out


OUTPUTS = [
    (["eval", "--agent", "{agent}", "--game", "pong"], "--json", "out.json"),
    (["compare", "--agent", "{agent}", "--game", "pong"], "--out", "demo/"),
    (["video", "--agent", "{agent}", "--game", "pong"], "--out", "clip.mp4"),
    (["substitute", "--agent", "{agent}", "--game", "pong"], "--out", "sub/"),
    (["transfer", "--source", "{agent}", "--victim", "{agent}", "--eps", "0.01"], "--out", "transfer/"),
    (["robustness", "--agent", "{agent}", "--eps", "1/255", "--out", "{fine}"], "--json", "out.json"),
    (["robustness", "--agent", "{agent}", "--eps", "1/255"], "--out", "results/"),
    (["zoo"], "--curves", "curves.png"),
    (["report", "{fine}"], "--out", "report/"),
]
"""Each command's output options: the command, the option, and a name for it (/: a folder)."""

UNWRITABLE = [
    (*output, case)
    for output in OUTPUTS
    for case in ("onto a file" if output[2].endswith("/") else "onto a folder", "under a file", "read-only")
]
"""Each output with each way it cannot be written (a file may exist, a folder too)."""


@pytest.mark.parametrize(
    ("command", "option", "name", "case"), UNWRITABLE, ids=[f"{c[0]} {o} {k}" for c, o, _, k in UNWRITABLE]
)
def test_an_unwritable_output_is_refused_before_anything_is_played(
    monkeypatch, tiny_atari_agent, tmp_path, capsys, command, option, name, case
) -> None:
    if case == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders; a read-only file system would refuse it")

    def load(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the agent was loaded before its outputs were checked")

    monkeypatch.setattr("rlattack.cli_options.load_policy", load)
    monkeypatch.setattr("rlattack.loading.load_policy", load)
    name = name.rstrip("/")
    blocker, read_only = tmp_path / "blocker", tmp_path / "read-only"
    blocker.write_text("a file")
    read_only.mkdir()
    target = {
        "onto a folder": tmp_path / name,
        "onto a file": blocker,
        "under a file": blocker / name,
        "read-only": read_only / name,
    }[case]
    if case == "onto a folder":
        target.mkdir()
    read_only.chmod(0o555)
    try:
        args = [a.format(agent=tiny_atari_agent, fine=tmp_path / "fine") for a in command]
        assert run(monkeypatch, *args, option, str(target)) == 2
    finally:
        read_only.chmod(0o755)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"rlattack: error: {option} {target}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["blocker", "read-only"] + ([name] if case == "onto a folder" else [])
    )
    assert list(read_only.iterdir()) == [] and blocker.read_text() == "a file"


def test_games_cut_at_the_frame_cap_are_flagged_counted_and_marked(
    monkeypatch, tiny_atari_agent, tmp_path, capsys
) -> None:
    monkeypatch.setattr("rlattack.envs.MAX_FRAMES", 400)  # 100 steps: every game of Pong is cut
    out = tmp_path / "out.json"
    args = ["eval", "--agent", tiny_atari_agent, "--game", "pong", "--episodes", "2", "--envs", "2"]
    assert run(monkeypatch, *args, "--json", str(out), "--no-progress") == 0
    payload = json.loads(out.read_text())
    assert [(g["truncated"], g["length"]) for g in payload["episodes"]] == [(True, 100), (True, 100)]
    assert payload["summary"]["games_cut"] == 2
    printed = " ".join(capsys.readouterr().out.split())
    assert "* 2 of 2 games hit the 108,000-frame cap" in printed


def test_an_interrupted_grid_says_so_on_stderr(monkeypatch, tmp_path, capsys) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("rlattack.grid.run.run_grid", interrupted)
    assert run(monkeypatch, "run", str(tmp_path / "grid.yaml"), "--out", str(tmp_path / "out")) == 130
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("interrupted: 0 finished cells are saved in")


@pytest.mark.parametrize("width", ["60", "80", "200"])
def test_robustness_help_prints_the_whole_default_attack_set(monkeypatch, capsys, width) -> None:
    from rlattack.robustness.attack_set import DEFAULT_SET

    monkeypatch.setenv("COLUMNS", width)
    assert run(monkeypatch, "robustness", "--help") == 0
    shown = capsys.readouterr().out
    attacks = shown[shown.index("--attacks") : shown.index("--certify")]  # its help and default
    assert set(DEFAULT_SET) <= set(re.findall(r"[\w-]+", attacks)), attacks
