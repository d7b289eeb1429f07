"""The bundled victims: each loads without pickles, fits its game, plays, and has honest metadata."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from rlattack.envs import make_vector_env
from rlattack.sb3 import Q_VALUE_ALGORITHMS
from rlattack.zoo import Victim, load_victim, victims

BUNDLED = victims()


@pytest.mark.parametrize("v", BUNDLED, ids=[v.name for v in BUNDLED])
def test_a_bundled_victim_loads_fits_its_game_and_plays(v: Victim) -> None:
    policy = load_victim(v.name)
    env = make_vector_env(v.game, 2)
    try:
        assert int(env.single_action_space.n) == v.n_actions == policy.n_actions
        assert policy.outputs == ("q-values" if v.algorithm in Q_VALUE_ALGORITHMS else "logits")
        policy.check_fits(v.n_actions, env.single_observation_space.shape, v.game)
        obs, _ = env.reset(seed=0)
        seen = set()
        for t in range(300):
            actions = policy.act(obs)
            if t % 100 == 0:  # a batch acts as its observations one by one
                assert actions.tolist() == [int(policy.act(obs[i : i + 1])[0]) for i in range(2)]
            seen.update(actions.tolist())
            obs = env.step(actions)[0]
    finally:
        env.close()
    if v.meets_bar:
        assert len(seen) > 1  # a trained policy reacts to what it sees


@pytest.mark.parametrize("v", BUNDLED, ids=[v.name for v in BUNDLED])
def test_a_bundled_victims_score_was_measured_by_eval_and_a_shortfall_is_explained(v: Victim) -> None:
    meta, score = v.meta, v.clean_score
    assert score is not None and score["episodes"] >= 10
    assert score["command"].startswith(f"rlattack eval --agent {v.name} --attack none --episodes ")
    sampled = v.clean_score_sampled
    if v.algorithm in Q_VALUE_ALGORITHMS:
        assert sampled is None  # Q-values are no distribution to sample from
    else:  # an actor-critic victim is also scored as it played in training
        assert sampled is not None and sampled["episodes"] >= 10
        assert sampled["command"] == score["command"] + " --act sample"
    assert meta["frames"] == 4 * meta["timesteps"] and meta["wall_seconds"] > 0 and meta["hardware"]
    recipe = meta.get("recipe", v.algorithm)  # SA-DQN and adversarial training train DQN networks
    command = meta["command"]
    assert command.startswith(f"python -m agents.{recipe} ")
    named = re.search(r"--game (\S+)", command)  # else the recipe's default game
    default = importlib.import_module(f"agents.{recipe}").Args.model_fields["game"].default
    assert (named.group(1) if named else default) == v.game
    if "init_from" in meta:  # fine-tuned: what it started from, and the frames it added
        assert 0 <= meta["init_from"]["frames"] < meta["frames"]
    if v.meets_bar is False:
        assert "below" in meta["note"]  # shipped under its bar only with the reason, said plainly


def test_the_bar_is_inclusive_and_only_for_the_papers_games() -> None:
    def with_score(game: str, score: float | None) -> Victim:
        clean = None if score is None else {"return_mean": score, "return_std": 0.0, "episodes": 10}
        return Victim("x", game, "dqn", 18, 4, clean, None, {})

    assert with_score("seaquest", 499.9).meets_bar is False
    assert with_score("seaquest", 500.0).meets_bar is True
    assert with_score("pong", 18.0).meets_bar is True
    assert with_score("breakout", 400.0).meets_bar is None
    assert with_score("pong", None).meets_bar is None


def test_the_zoo_table_fits_80_columns_one_line_per_victim(monkeypatch, capsys) -> None:
    from rich.console import Console

    from rlattack.tables import zoo_table

    found = victims()
    console = Console(width=80, record=True)
    console.print(zoo_table(found))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    for v in found:
        assert sum(f" {v.name} " in line for line in lines) == 1
    defended = [v for v in found if v.robustness_bar is not None]
    assert len(lines) == len(found) + 5 + 2 + len(defended)  # title, rules, header; the caption
    assert (
        "clean bar" in lines[2] and "clean bar: judged on the greedy clean score" in lines[-len(defended) - 2]
    )
    from tests.test_cli import run

    assert run(monkeypatch, "zoo", "--long") == 0
    out = capsys.readouterr().out
    assert all(f"{v.name}: " in out for v in found)


def test_a_defended_victim_shows_its_robustness_bar_and_whether_its_worst_case_meets_it() -> None:
    from rich.console import Console

    from rlattack.tables import zoo_table

    def victim(name: str, recipe: str | None, worst: float | None) -> Victim:
        clean = {"return_mean": 19.0, "return_std": 0.0, "episodes": 10}
        meta = {} if recipe is None else {"recipe": recipe}
        return Victim(name, "pong", "dqn", 6, 4, clean, None, meta, worst_case=worst)

    found = [
        victim("pong-plain", None, -21.0),  # undefended: no robustness bar, whatever its worst case
        victim("pong-adv", "advtrain", -19.8),
        victim("pong-sa", "sadqn", 15.0),  # the bar is inclusive
        victim("pong-new", "sadqn", None),
    ]
    assert [v.meets_robustness_bar for v in found] == [None, False, True, None]
    console = Console(width=80, record=True)
    console.print(zoo_table(found))
    text = console.export_text()
    assert "robustness bar: judged on the worst case at 1/255" in text
    assert "pong-adv: +15 below (-19.8)" in text and "pong-sa: +15 met (+15.0)" in text
    assert "pong-new: +15 not measured" in text and "pong-plain:" not in text


def test_the_readme_counts_the_zoos_victims_and_their_bars_as_the_zoo_does() -> None:
    """Its counts, its table's rows and each defended victim's robustness verdict."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    words = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    number = {w: i for i, w in enumerate(f"{words} sixteen seventeen eighteen nineteen twenty".split(), 1)}
    count = rf"(\d+|{'|'.join(number)})"
    found = re.findall(rf"\b{count} bundled victims|\b{count} victims are bundled", readme, re.IGNORECASE)
    counts = [int(c) if c.isdigit() else number[c.lower()] for pair in found for c in pair if c]
    assert len(counts) >= 2 and set(counts) == {len(BUNDLED)}, counts
    met = sum(bool(v.meets_bar) and v.meets_robustness_bar is not False for v in BUNDLED)
    assert number[re.search(r"(\w+) meet\s+their bar", readme).group(1).lower()] == met
    zoo = readme[readme.index("## The zoo") :].split("\n## ")[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([\w-]+)` \|.*\| ([^|]+) \|$", zoo, re.M)}
    assert set(rows) == {v.name for v in BUNDLED}
    assert {name for name, bar in rows.items() if "worst case" in bar} == {
        v.name for v in BUNDLED if v.defended
    }
    for v in BUNDLED:
        if v.robustness_bar is not None:
            verdict = "met" if v.meets_robustness_bar else "below"
            assert f"worst case {v.robustness_bar:+g}: {verdict} ({v.worst_case:+.1f})" in rows[v.name]
        if v.meets_bar is False:
            assert f"{v.bar:+g}: below" in rows[v.name] or f"{v.bar:g}: below" in rows[v.name]
