"""Sampled play: actions drawn from the policy, one draw shared by the clean and attacked action."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rlattack.attacks import FGSM
from rlattack.errors import UserInputError
from rlattack.grid import Cell, GridConfig, expand
from rlattack.grid.run import check_cells
from rlattack.policies import Policy
from rlattack.rollout.attacker import Attacker
from rlattack.rollout.evaluate import evaluate
from rlattack.sb3 import load_sb3
from rlattack.schedules import EveryN
from tests.conftest import SMALL_SHAPE, tiny_net

RESULTS = Path(__file__).parents[1] / "experiments" / "huang2017" / "results"


class FixedLogits(nn.Module):
    """The same logits for every observation."""

    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(x), -1)


def observe(attacker: Attacker, obs: np.ndarray):
    k = len(obs)
    return attacker.observe(obs, np.ones(k, dtype=bool), np.zeros(k, dtype=int), np.arange(k))


def frames(k: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (k, *SMALL_SHAPE), dtype=np.uint8)


def test_sampled_actions_follow_the_softmax_and_greedy_ones_the_argmax() -> None:
    logits = [0.0, 1.0, 2.0]
    policy = Policy(FixedLogits(logits), 3, SMALL_SHAPE, input_scale=1.0)
    obs = frames(20_000)
    sampled = observe(Attacker(policy, None, num_envs=len(obs), act="sample"), obs).action
    share = np.bincount(sampled, minlength=3) / len(obs)
    # 20,000 draws: the standard error of each share is under 0.004
    assert share == pytest.approx(torch.softmax(torch.tensor(logits), 0).numpy(), abs=0.015)
    greedy = observe(Attacker(policy, None, num_envs=len(obs)), obs).action
    assert (greedy == 2).all()


def test_an_attacker_reused_step_after_step_decides_each_step_as_a_fresh_one() -> None:
    # the attacker refills one float buffer each step (and a new one when the batch shrinks)
    policy = Policy(tiny_net(), 3, SMALL_SHAPE, input_scale=1.0)
    reused = Attacker(policy, FGSM(0.05), EveryN(2), num_envs=8)
    for step, k in enumerate((8, 8, 5, 8, 8)):
        obs, steps, new_game = frames(k, seed=step), np.full(k, step), np.zeros(k, dtype=bool)
        got = reused.observe(obs, new_game, steps, np.arange(k))
        fresh = Attacker(policy, FGSM(0.05), EveryN(2), num_envs=8).observe(
            obs, new_game, steps, np.arange(k)
        )
        assert np.array_equal(got.action, fresh.action) and torch.equal(got.seen, fresh.seen)
        assert got.attacked.all() == (step % 2 == 0)


def test_what_the_agent_sees_unattacked_is_its_frames_over_255_bit_for_bit() -> None:
    policy = Policy(tiny_net(), 3, SMALL_SHAPE, input_scale=1.0)
    levels = np.arange(256, dtype=np.uint8)  # every gray level, once per observation
    obs = np.stack([np.roll(levels, i).reshape(SMALL_SHAPE) for i in range(4)])
    seen = observe(Attacker(policy, None, num_envs=4), obs).seen
    assert torch.equal(seen, torch.as_tensor(obs) / 255.0)


def test_the_clean_action_under_attack_is_the_one_taken_unattacked() -> None:
    policy = Policy(tiny_net(), 3, SMALL_SHAPE, input_scale=1.0)
    obs = frames(500)
    unattacked = observe(Attacker(policy, None, num_envs=500, act="sample", seed=4), obs)
    attacked = observe(Attacker(policy, FGSM(0.3), num_envs=500, act="sample", seed=4), obs)
    greedy = observe(Attacker(policy, None, num_envs=500), obs)
    assert (unattacked.action != greedy.action).any()  # the draws matter ...
    assert (attacked.clean_action == unattacked.action).all()  # ... and are the same draws
    assert (attacked.action != attacked.clean_action).any()  # the attack changes some actions
    nothing = observe(Attacker(policy, FGSM(0.0), num_envs=500, act="sample", seed=4), obs)
    assert (nothing.action == nothing.clean_action).all()  # no perturbation, no change counted


def test_the_attacked_action_is_the_same_draw_on_what_the_agent_saw() -> None:
    policy = Policy(tiny_net(), 3, SMALL_SHAPE, input_scale=1.0)
    obs = frames(500)
    attacked = observe(Attacker(policy, FGSM(0.3, quantize=True), num_envs=500, act="sample", seed=4), obs)
    seen = (attacked.seen.numpy() * 255).round().astype(np.uint8)  # whole gray levels: exact
    shown = observe(Attacker(policy, None, num_envs=500, act="sample", seed=4), seen)
    assert (attacked.action == shown.action).all()


def test_only_attacked_envs_change_and_each_keeps_its_draw() -> None:
    policy = Policy(tiny_net(), 3, SMALL_SHAPE, input_scale=1.0)
    obs, k = frames(400), 400
    steps = np.arange(k) % 2  # EveryN(2) attacks the envs at step 0: every other one

    def step(attack):
        attacker = Attacker(policy, attack, EveryN(2), num_envs=k, act="sample", seed=2)
        return attacker.observe(obs, np.zeros(k, dtype=bool), steps, np.arange(k))

    unattacked, attacked = step(None), step(FGSM(0.3))
    assert attacked.attacked.tolist() == (steps == 0).tolist()
    assert (attacked.clean_action == unattacked.action).all()
    assert (attacked.action[~attacked.attacked] == unattacked.action[~attacked.attacked]).all()
    assert (attacked.action[attacked.attacked] != unattacked.action[attacked.attacked]).any()


def test_transferred_attacks_keep_the_targets_draws() -> None:
    target = Policy(tiny_net(), 3, SMALL_SHAPE, input_scale=1.0)
    source = Policy(tiny_net(seed=5), 3, SMALL_SHAPE, input_scale=1.0)
    obs = frames(300)
    alone = observe(Attacker(target, None, num_envs=300, act="sample", seed=1), obs)
    shown = observe(Attacker(target, FGSM(0.3), num_envs=300, source=source, act="sample", seed=1), obs)
    assert (shown.clean_action == alone.action).all()
    assert (shown.action != shown.clean_action).any()


def test_sampled_play_is_seeded() -> None:
    policy = Policy(tiny_net(), 3, SMALL_SHAPE, input_scale=1.0)
    obs = frames(200)

    def actions(seed: int) -> list[list[int]]:
        attacker = Attacker(policy, None, num_envs=200, act="sample", seed=seed)
        return [observe(attacker, obs).action.tolist() for _ in range(3)]

    first = actions(0)
    assert first == actions(0) and first != actions(1)
    assert first[0] != first[1]  # a new draw each step


def test_q_values_are_not_sampled(sb3_models) -> None:
    assert load_sb3(sb3_models["dqn"]).outputs == load_sb3(sb3_models["qrdqn"]).outputs == "q-values"
    assert load_sb3(sb3_models["a2c"]).outputs == load_sb3(sb3_models["trpo"]).outputs == "logits"
    dqn = load_sb3(sb3_models["dqn"])
    with pytest.raises(UserInputError, match="Q-values"):
        evaluate(dqn, "pong", None, episodes=1, progress=False, act="sample")
    with pytest.raises(UserInputError, match="act must be one of greedy, sample"):
        Attacker(load_sb3(sb3_models["a2c"]), None, act="random")


def test_greedy_cells_keep_the_ids_they_had_before_act_existed() -> None:
    records = [json.loads(path.read_text()) for path in (RESULTS / "cells").glob("*.json")]
    assert any("act" not in r["cell"] for r in records)  # committed before `act` existed
    for r in records:
        assert Cell(**r["cell"]).id == r["id"]
    cell = Cell(**records[0]["cell"])
    assert cell.act == "greedy" and cell.model_copy(update={"act": "sample"}).id != cell.id


def test_a_sampled_grid_has_its_own_cells(sb3_models) -> None:
    grid = GridConfig(agents=["pong-a3c"], attacks=["none", "fgsm"], eps=[0.001])
    sampled = grid.model_copy(update={"act": "sample"})
    assert "act" not in grid.identity() and sampled.identity()["act"] == "sample"
    greedy_ids = {c.id for c in expand(grid)}
    sampled_cells = expand(sampled)
    assert {c.act for c in sampled_cells} == {"sample"} and not greedy_ids & {c.id for c in sampled_cells}
    assert all(c.label.endswith("act=sample") for c in sampled_cells)
    dqn = GridConfig(agents=[f"sb3:{sb3_models['dqn']}"], games=["pong"], attacks=["none"], act="sample")
    with pytest.raises(UserInputError, match="Q-values"):
        check_cells(expand(dqn))


def test_a_sampled_grid_runs_and_reports_beside_its_own_clean_score(tmp_path, tiny_atari_agent) -> None:
    from rlattack.grid.report import _games_table
    from rlattack.grid.run import run_grid
    from rlattack.grid.store import ResultStore
    from tests.test_experiments import write_config

    config = write_config(tmp_path / "grid.yaml", tiny_atari_agent, attacks=["none"], episodes=1, envs=1)
    run_grid(config, tmp_path / "out", progress=False)
    write_config(config, tiny_atari_agent, attacks=["none"], episodes=1, envs=1, act="sample")
    with pytest.raises(UserInputError, match=r"\(changed: act\)"):
        run_grid(config, tmp_path / "out", progress=False)
    run = run_grid(config, tmp_path / "out", extend=True, progress=False)
    assert (run.computed, run.skipped) == (1, 0)
    write_config(config, tiny_atari_agent, attacks=["none"], episodes=1, envs=1)  # and back
    with pytest.raises(UserInputError, match=r"\(changed: act\)"):
        run_grid(config, tmp_path / "out", progress=False)
    records = ResultStore(tmp_path / "out").records()
    assert sorted(r["cell"].get("act", "greedy") for r in records) == ["greedy", "sample"]
    assert sorted(_games_table(records).agent) == [tiny_atari_agent, f"{tiny_atari_agent} (sampled)"]


def test_eval_and_transfer_sample_from_the_command_line(
    monkeypatch, tmp_path, tiny_atari_agent, capsys
) -> None:
    from rlattack.grid.store import ResultStore
    from tests.test_cli import run as cli

    out = tmp_path / "eval.json"
    args = ["--agent", tiny_atari_agent, "--game", "pong", "--episodes", "1", "--no-progress"]
    assert cli(monkeypatch, "eval", *args, "--act", "sample", "--json", str(out)) == 0
    assert json.loads(out.read_text())["config"]["act"] == "sample"
    assert "actions sampled" in capsys.readouterr().out
    pair = ["--source", tiny_atari_agent, "--victim", tiny_atari_agent, "--game", "pong", "--eps", "0.01"]
    pair += ["--episodes", "1", "--envs", "1", "--no-progress", "--out", str(tmp_path / "t")]
    assert cli(monkeypatch, "transfer", *pair) == 0
    assert cli(monkeypatch, "transfer", *pair, "--act", "sample") == 0
    records = ResultStore(tmp_path / "t").transfer_records()
    assert sorted(r.act for r in records) == ["greedy", "sample"] and len({r.key for r in records}) == 2
    assert "act" not in next(r for r in records if r.act == "greedy").setting  # greedy keys as before
    assert "(sampled)" in (tmp_path / "t" / "transfer.md").read_text()
