"""The zoo's learning-curve figure: rolling means, a panel per game, the bar, and clear refusals."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

import rlattack.zoo
from rlattack.cli import main
from rlattack.curves import curves_figure, read_curve, training_curve
from rlattack.errors import UserInputError
from rlattack.zoo import BARS, RANDOM_PLAY, Victim


def fake_victim(name: str, game: str, frames: int, score: float, scores: list[float] | None, zoo) -> Victim:
    """A victim folder in `zoo` with a `curve.csv` of `scores` spread evenly over `frames`."""
    (zoo / name).mkdir(parents=True)
    if scores is not None:
        played = [frames * (i + 1) // len(scores) for i in range(len(scores))]
        curve = {"timesteps": [f // 4 for f in played], "frames": played, "score": scores, "length": 100}
        pd.DataFrame(curve).to_csv(zoo / name / "curve.csv", index=False)
    clean = {"return_mean": score, "return_std": 1.0, "episodes": 10, "command": "rlattack eval"}
    return Victim(name, game, "a3c", 6, frames, clean, None, meta={})


def test_a_point_of_the_curve_is_the_mean_of_the_last_window_games() -> None:
    curve = pd.DataFrame({"frames": [4, 8, 12, 16], "score": [0.0, 10.0, 20.0, 30.0]})
    line = training_curve(curve, window=2)
    assert line["frames"].tolist() == [4, 8, 12, 16]
    assert line["score"].tolist() == [0.0, 5.0, 15.0, 25.0]


def test_the_curve_keeps_only_the_games_that_led_to_the_bundled_weights(tmp_path) -> None:
    path = tmp_path / "curve.csv"
    # frames 30 and 40 were played by a stretch that was abandoned (resumed from 20); 70 came after
    # the weights were bundled at 60
    frames = [10, 20, 30, 40, 25, 50, 60, 70]
    pd.DataFrame({"timesteps": 0, "frames": frames, "score": range(8), "length": 1}).to_csv(path, index=False)
    curve = read_curve(path, frames=60)
    assert curve.frames.tolist() == [10, 20, 25, 50, 60]
    assert curve.score.tolist() == [0, 1, 4, 5, 6]
    for text in (
        "",
        "frames,score\n1,2,3,4\n",
        "frames,score\n5\n",
        "frames,score\n1,x\n",
        "timesteps,length\n1,2\n",
    ):
        path.write_text(text)
        with pytest.raises(UserInputError, match="not a learning curve"):
            read_curve(path, frames=60)


def test_one_panel_per_game_with_each_victims_curve_its_score_and_the_bar(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(rlattack.zoo, "ZOO", tmp_path)
    victims = [
        fake_victim("seaquest-a3c", "seaquest", 4000, 260.0, [100.0, 300.0, 500.0, 700.0], tmp_path),
        fake_victim("seaquest-trpo", "seaquest", 2000, 174.0, None, tmp_path),
        fake_victim("pong-a3c", "pong", 8000, 19.0, [-21.0, 21.0], tmp_path),
    ]
    fig = curves_figure(victims, window=2)
    pong, seaquest = fig.axes
    assert (pong.get_title(), seaquest.get_title()) == ("pong", "seaquest")  # the order of BARS
    lines = {line.get_label(): line for line in seaquest.get_lines()}
    assert lines["seaquest-a3c"].get_ydata().tolist() == [100.0, 200.0, 400.0, 600.0]
    assert lines["seaquest-a3c"].get_xdata().tolist() == [0.001, 0.002, 0.003, 0.004]  # millions
    assert set(lines[f"bar {BARS['seaquest']:g}"].get_ydata()) == {BARS["seaquest"]}
    assert set(lines["random play"].get_ydata()) == {RANDOM_PLAY["seaquest"]}
    legend = [t.get_text() for t in seaquest.get_legend().get_texts()]
    assert "seaquest-trpo (no curve)" in legend and "pong-a3c" not in legend
    points = [line for line in seaquest.get_lines() if line.get_marker() == "o"]
    assert sorted((p.get_xdata()[0], p.get_ydata()[0]) for p in points) == [(0.002, 174.0), (0.004, 260.0)]
    with pytest.raises(UserInputError, match="at least one game"):
        curves_figure(victims, window=0)


def test_scores_under_attack_are_crosses_up_to_the_bundled_frames(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(rlattack.zoo, "ZOO", tmp_path)
    victim = fake_victim("pong-dqn-adv", "pong", 8000, 19.0, [-21.0, 21.0], tmp_path)
    attacked = {
        "frames": [2000, 4000, 8000, 9000, 8000],  # 9000: measured after the bundled weights
        "attack": ["PGD-10"] * 4 + ["PGD-10, 10 games"],
        "score": [-21.0, -20.0, -17.0, -10.0, -18.0],
    }
    pd.DataFrame(attacked).to_csv(tmp_path / "pong-dqn-adv" / "attacked.csv", index=False)
    (pong,) = curves_figure([victim], window=2).axes
    lines = {line.get_label(): line for line in pong.get_lines()}
    pgd = lines["pong-dqn-adv under PGD-10"]
    assert pgd.get_xdata().tolist() == [0.002, 0.004, 0.008]
    assert pgd.get_ydata().tolist() == [-21.0, -20.0, -17.0]
    assert pgd.get_marker() == "x" and pgd.get_color() == lines["pong-dqn-adv"].get_color()
    assert lines["pong-dqn-adv under PGD-10, 10 games"].get_ydata().tolist() == [-18.0]
    for text in ("frames,score\n8000,-20\n", "frames,attack,score\n8000,,-20\n"):
        (tmp_path / "pong-dqn-adv" / "attacked.csv").write_text(text)
        with pytest.raises(UserInputError, match="not a table of attacked scores with frames, attack, score"):
            curves_figure([victim], window=2)


def test_zoo_draws_the_curves_of_the_bundled_victims(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "figs" / "curves.png"
    monkeypatch.setattr(sys, "argv", ["rlattack", "zoo", "--curves", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert (exit_info.value.code or 0) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--curves", "{tmp}/c.jpg"], "is written as .png, .pdf, .svg"),
        (["--curves", "{tmp}/c.png", "--window", "0"], "Invalid value for '--window'"),
        (["--window", "0"], "Invalid value for '--window'"),
        (["--curves", "{tmp}"], "is a folder; name a file in it"),
        (["--curves", "{tmp}/dir.png"], "is a folder; name a file in it"),
    ],
)
def test_zoo_refuses_a_bad_figure_before_printing_anything(
    tmp_path, monkeypatch, capsys, args, message
) -> None:
    (tmp_path / "dir.png").mkdir()  # a folder where the figure would go
    monkeypatch.setattr(sys, "argv", ["rlattack", "zoo", *(a.format(tmp=tmp_path) for a in args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and message in captured.err
    assert [p.name for p in tmp_path.iterdir()] == ["dir.png"] and not any((tmp_path / "dir.png").iterdir())
