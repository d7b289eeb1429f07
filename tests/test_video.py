"""`rlattack video`: one game side by side, read back frame by frame."""

from __future__ import annotations

import sys

import imageio.v2 as imageio
import numpy as np
import pytest

from rlattack.attacks import FGSM
from rlattack.loading import load_policy
from rlattack.video import CAPTION, PANEL, record_episode


def test_video_shows_the_screen_the_attacked_view_and_the_perturbation(tmp_path, tiny_atari_agent) -> None:
    out = tmp_path / "episode.gif"
    policy = load_policy(tiny_atari_agent)
    tally = record_episode(policy, "pong", FGSM(8 / 255), None, out, max_steps=6)
    assert tally["steps"] == tally["attacked"] == 6
    frames = imageio.mimread(out)
    assert len(frames) == 6
    frame = np.asarray(frames[-1])[..., :3]
    game_width = frame.shape[1] - 2 * PANEL
    assert frame.shape == (PANEL + CAPTION, game_width + 2 * PANEL, 3) and game_width > 0
    screen, seen, change = (
        frame[:PANEL, :game_width],
        frame[40:PANEL, game_width : game_width + PANEL],
        frame[40:PANEL, game_width + PANEL :],
    )
    assert screen.std(axis=2).mean() > 1  # the screen has colour
    assert seen.std(axis=2).max() < 20  # the agent's view is gray (text aside)
    red, _, blue = change.astype(int).transpose(2, 0, 1)
    assert (red > blue + 40).any() and (blue > red + 40).any()  # FGSM L-inf: every pixel up or down


def test_video_command_writes_an_mp4(monkeypatch, tmp_path, tiny_atari_agent, capsys) -> None:
    from rlattack.cli import main

    out = tmp_path / "clean.mp4"
    argv = ["rlattack", "video", "--agent", tiny_atari_agent, "--game", "pong", "--attack", "none"]
    monkeypatch.setattr(sys, "argv", [*argv, "--max-steps", "4", "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert (exit_info.value.code or 0) == 0
    assert "4 steps" in capsys.readouterr().out
    assert imageio.get_reader(out).count_frames() == 4
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(tmp_path / "clean.avi")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and not (tmp_path / "clean.avi").exists()
