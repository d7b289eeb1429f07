"""Black-box attacks: the oracle's budget, augmentation, substitutes and transfer."""

from __future__ import annotations

import copy
import json
import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rlattack.attacks import FGSM
from rlattack.attacks.targets import FixedAction
from rlattack.blackbox import (
    Dataset,
    Oracle,
    QueryBudgetExceeded,
    Substitute,
    augment,
    noise_stability,
    train_substitute,
    unseen,
    watch,
)
from rlattack.blackbox.substitute import Ensemble
from rlattack.blackbox.transfer import TransferSetting, transfer_matrix
from rlattack.errors import UserInputError
from rlattack.grid.store import ResultStore, TransferRecord
from rlattack.loading import load_torchscript
from rlattack.policies import Policy, weights_digest
from rlattack.rollout.evaluate import evaluate
from tests.test_cli import run

SHAPE = (4, 4, 4)
D = int(np.prod(SHAPE))


def linear_policy(n_actions: int = 3, seed: int = 0) -> Policy:
    """A known policy: logits = W (x - 1/2) on the flattened [0, 1] observation (classes balanced)."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(D, n_actions))
    with torch.no_grad():
        net[1].bias.copy_(-0.5 * net[1].weight.sum(1))
    return Policy(net, n_actions, SHAPE, input_scale=1.0, name="linear")


def frames(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *SHAPE), dtype=np.uint8)


def test_oracle_counts_every_query_and_enforces_its_budget() -> None:
    oracle = Oracle(linear_policy(), budget=10, batch_size=4)
    assert len(oracle(frames(6))) == 6 and oracle.queries == 6 and oracle.remaining == 4
    with pytest.raises(QueryBudgetExceeded, match="budget of 10"):
        oracle(frames(5))
    assert oracle.queries == 6  # a refused batch costs nothing and answers nothing
    oracle(frames(4))
    assert oracle.queries == 10 and oracle.remaining == 0
    with pytest.raises(QueryBudgetExceeded):
        oracle(frames(1))


def test_oracle_answers_actions_only() -> None:
    policy = linear_policy()
    oracle = Oracle(policy)
    obs = frames(20)
    answers = oracle(obs)
    assert isinstance(answers, np.ndarray) and answers.dtype == np.int64
    with torch.no_grad():
        expected = policy(torch.as_tensor(obs).float() / 255).argmax(1).numpy()
    assert np.array_equal(answers, expected)
    held = list(vars(oracle).values())
    assert not any(isinstance(v, (torch.Tensor, nn.Module)) for v in held)  # no weights, no gradients
    with pytest.raises(UserInputError, match="uint8"):
        oracle(obs.astype(np.float32))
    with pytest.raises(UserInputError, match="uint8"):
        oracle(obs[:, :2])


def _substitute(seed: int = 0) -> Substitute:
    return Substitute("mlp", SHAPE, 3, lr=1e-3, seed=seed)


def test_augmentation_doubles_the_set_with_labels_from_the_oracle() -> None:
    oracle = Oracle(linear_policy())
    data = Dataset(obs := frames(50), oracle(obs))
    sub = _substitute()
    new = augment(sub, data, 0.1, oracle)
    assert len(data + new) == 100 and oracle.queries == 100
    assert np.array_equal(new.actions, Oracle(linear_policy())(new.obs))
    moved = new.obs.astype(int) - data.obs.astype(int)
    sign = sub.label_gradient_sign(data.obs, data.actions)
    room = np.where(sign > 0, 255 - data.obs.astype(int), data.obs.astype(int))
    assert np.array_equal(moved, sign * np.minimum(26, room))  # round(0.1 * 255) gray levels, clipped
    darker = augment(sub, data, -0.1, oracle)
    assert np.array_equal(darker.obs.astype(int) - data.obs, -sign * np.minimum(26, 255 - room))


def test_augmentation_within_a_smaller_budget_uses_a_subset() -> None:
    oracle = Oracle(linear_policy(), budget=70)
    data = Dataset(obs := frames(50), oracle(obs))
    new = augment(_substitute(), data, 0.1, oracle)
    assert len(new) == 20 and oracle.remaining == 0


def test_substitute_of_a_known_policy_reaches_high_agreement_in_seconds() -> None:
    oracle = Oracle(linear_policy(), budget=4000)
    holdout = Dataset(obs := frames(1000, seed=1), Oracle(linear_policy())(obs))
    seed_set = Dataset(obs := frames(4000), oracle(obs))
    history = train_substitute(_substitute(), oracle, seed_set, holdout, epochs=10, progress=False)
    assert history[-1].agreement >= 0.9  # a third of it by chance
    assert history[-1].queries == 4000


def test_jacobian_augmentation_grows_the_set_round_by_round_within_the_budget() -> None:
    oracle = Oracle(linear_policy(), budget=500)
    holdout = Dataset(obs := frames(500, seed=1), Oracle(linear_policy())(obs))
    seed_set = Dataset(obs := frames(100), oracle(obs))
    history = train_substitute(_substitute(), oracle, seed_set, holdout, rounds=5, epochs=5, progress=False)
    assert [r.points for r in history] == [100, 200, 400, 500]  # the budget stops the rounds
    assert [r.queries for r in history] == [100, 200, 400, 500]
    assert history[-1].agreement > history[0].agreement + 0.1  # 0.2 to 0.3 over four seeds


def test_watching_records_what_the_target_saw_and_did(tiny_atari_agent) -> None:
    policy = load_torchscript(tiny_atari_agent[len("torch:") :])
    oracle = Oracle(policy, budget=50)
    data = watch(oracle, "pong", 50, envs=4, progress=False)
    assert data.obs.shape == (50, 4, 84, 84) and oracle.queries == 50
    assert np.array_equal(data.actions, policy.act(data.obs))
    env0 = data.obs[::4]  # states come env by env, step by step: each stack shifts by one frame
    assert all(np.array_equal(later[:3], earlier[1:]) for earlier, later in pairwise(env0))


def test_exploring_strays_from_the_targets_game_but_labels_with_its_answers(tiny_atari_agent) -> None:
    policy = load_torchscript(tiny_atari_agent[len("torch:") :])
    followed = watch(Oracle(policy), "pong", 200, envs=4, progress=False)
    oracle = Oracle(policy, budget=200)
    strayed = watch(oracle, "pong", 200, envs=4, progress=False, explore=1.0)
    assert oracle.queries == 200 and np.array_equal(strayed.actions, policy.act(strayed.obs))
    assert np.array_equal(strayed.obs[:4], followed.obs[:4])  # same starts, then other moves
    assert not np.array_equal(strayed.obs, followed.obs)
    again = watch(Oracle(policy), "pong", 200, envs=4, progress=False, explore=1.0)
    assert np.array_equal(again.obs, strayed.obs)  # the seed fixes the attacker's moves
    sticky = watch(Oracle(policy), "pong", 200, envs=4, progress=False, explore=1.0, sticky=0.9)
    assert not np.array_equal(sticky.obs, strayed.obs)  # the same moves, repeated by the emulator
    with pytest.raises(UserInputError, match="exploration probability"):
        watch(Oracle(policy), "pong", 10, explore=1.5, progress=False)
    with pytest.raises(UserInputError, match="sticky-action probability"):
        watch(Oracle(policy), "pong", 10, sticky=1.0, progress=False)


def test_watching_one_step_in_k_spans_more_of_each_game(tiny_atari_agent) -> None:
    oracle = Oracle(load_torchscript(tiny_atari_agent[len("torch:") :]))
    data = watch(oracle, "pong", 20, envs=2, progress=False, every=3)
    assert len(data) == 20 and oracle.queries == 2 * 28  # steps 0, 3, ..., 27 of both games
    env0 = data.obs[::2]  # each stack starts with the frame that ended the previous one
    assert all(np.array_equal(later[0], earlier[3]) for earlier, later in pairwise(env0))


def test_noise_stability_counts_the_actions_that_one_gray_level_overturns() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(D, 2))  # logits (x_0 - 128/255, 0)
    with torch.no_grad():
        net[1].weight.zero_()
        net[1].bias.copy_(torch.tensor([-128 / 255, 0.0]))
        net[1].weight[0, 0] = 1.0
    oracle = Oracle(Policy(net, 2, SHAPE, input_scale=1.0))
    obs = frames(1000)
    obs[:, 0, 0, 0] = np.repeat(np.array([128, 10], np.uint8), 500)  # on the boundary, far below it
    data = Dataset(obs, oracle(obs))
    # 129 keeps action 0 and 127 turns it to 1, at random; 9 or 11 never cross 128
    assert noise_stability(oracle, data) == pytest.approx(0.75, abs=0.05)
    assert noise_stability(oracle, data, levels=0) == 1.0


def test_a_saved_substitute_is_a_torchscript_agent(tmp_path) -> None:
    sub = Substitute("mnih2013", (4, 84, 84), 6)
    obs = np.random.default_rng(0).integers(0, 256, (8, 4, 84, 84), dtype=np.uint8)
    sub.fit_statistics(obs)  # the input statistics travel with the saved module
    assert torch.allclose(sub.net[0].mean, torch.as_tensor(obs).float().mean(0))
    sub.save(str(tmp_path / "sub.pt"))
    loaded = load_torchscript(tmp_path / "sub.pt")
    assert np.array_equal(loaded.act(obs), sub.predict(obs))
    assert np.array_equal(sub.policy().act(obs), sub.predict(obs))


def test_an_ensemble_answers_with_its_members_mean_log_probabilities_and_saves_as_one(tmp_path) -> None:
    oracle = Oracle(linear_policy())
    data = Dataset(obs := frames(300), oracle(obs))
    sub = Substitute("mlp", SHAPE, 3, seed=4, members=3)
    assert isinstance(sub.net, Ensemble) and len(sub.members) == 3
    firsts = [next(m.parameters()).detach().clone() for m in sub.members]
    sub.fit_statistics(data.obs)
    sub.fit(data, epochs=2, progress=False)
    x = torch.as_tensor(data.obs).float()
    with torch.no_grad():
        mean = torch.stack([torch.log_softmax(m(x), 1) for m in sub.members]).mean(0)
        assert torch.allclose(sub.net(x), mean)
    assert not torch.equal(firsts[0], firsts[1])  # each member starts elsewhere
    assert all(not torch.equal(next(m.parameters()), f) for m, f in zip(sub.members, firsts, strict=True))
    sub.save(str(tmp_path / "ensemble.pt"))
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(tmp_path / "ensemble.pt"))(x), mean)
    with pytest.raises(UserInputError, match="at least one member"):
        Substitute("mlp", SHAPE, 3, members=0)


def test_the_step_size_decays_to_zero_over_each_fit_and_starts_again_at_lr() -> None:
    sub = _substitute()
    data = Dataset(obs := frames(100), Oracle(linear_policy())(obs))
    seen = []
    sub.optimizer.register_step_pre_hook(lambda opt, *_: seen.append(opt.param_groups[0]["lr"]))
    sub.fit(data, epochs=2, batch_size=25, progress=False)  # 8 steps
    sub.fit(data, epochs=1, batch_size=50, progress=False)  # 2 steps
    cosine = [0.5e-3 * (1 + math.cos(math.pi * k / 8)) for k in range(8)]
    assert seen == pytest.approx([*cosine, 1e-3, 0.5e-3])
    assert sub.optimizer.param_groups[0]["lr"] == pytest.approx(0.0)
    flat = Substitute("mlp", SHAPE, 3, lr=1e-3, lr_schedule="constant")
    flat.fit(data, epochs=2, batch_size=25, progress=False)
    assert flat.optimizer.param_groups[0]["lr"] == 1e-3
    with pytest.raises(UserInputError, match="cosine or constant"):
        Substitute("mlp", SHAPE, 3, lr_schedule="linear")


def test_unknown_architecture_is_a_clear_error() -> None:
    with pytest.raises(UserInputError, match="mnih2013, nature, mlp"):
        Substitute("resnet", SHAPE, 3)


@pytest.mark.parametrize("rule", [None, FixedAction(0)], ids=["untargeted", "induction"])
def test_transfer_from_a_policy_to_itself_equals_the_white_box_attack(tiny_atari_agent, rule) -> None:
    policy = load_torchscript(tiny_atari_agent[len("torch:") :])
    kwargs = {"episodes": 1, "envs": 1, "seed": 3, "progress": False}
    white = evaluate(policy, "pong", FGSM(0.01, target=rule), **kwargs).summary
    self_transfer = evaluate(policy, "pong", FGSM(0.01, target=rule), source=policy, **kwargs).summary
    keys = ("return_mean", "steps", "action_change_rate", "target_rate", "linf_mean", "source_success_rate")
    assert {k: self_transfer[k] for k in keys} == {k: white[k] for k in keys}
    success = white["action_change_rate"] if rule is None else white["target_rate"]
    assert white["source_success_rate"] == success > 0


def test_transfer_reports_the_targets_changes_and_the_sources_success_apart(tiny_atari_agent) -> None:
    source = load_torchscript(tiny_atari_agent[len("torch:") :])
    stubborn = nn.Sequential(nn.Flatten(), nn.Linear(4 * 84 * 84, 6))
    with torch.no_grad():
        stubborn[1].weight.zero_()
        stubborn[1].bias.copy_(torch.tensor([0.0, 0, 5, 0, 0, 0]))  # always action 2, whatever it sees
    target = Policy(stubborn, 6)
    s = evaluate(target, "pong", FGSM(0.01), episodes=1, progress=False, source=source).summary
    assert s["action_change_rate"] == 0 and s["source_success_rate"] > 0.5


def test_substitute_and_transfer_from_the_command_line(monkeypatch, tiny_atari_agent, tmp_path, capsys):
    sub_dir, out = tmp_path / "sub", tmp_path / "transfer"
    common = ["--game", "pong", "--no-progress"]
    assert (
        run(
            monkeypatch,
            "substitute",
            "--agent",
            tiny_atari_agent,
            "--budget",
            "300",
            "--rounds",
            "1",
            "--holdout",
            "100",
            "--explore",
            "0.5",
            "--epochs",
            "1",
            "--out",
            str(sub_dir),
            *common,
        )
        == 0
    )
    meta = json.loads((sub_dir / "substitute.json").read_text())
    assert meta["queries"] == 300 and [r["points"] for r in meta["rounds"]] == [150, 300]  # 300 // 2 watched
    assert meta["config"]["explore"] == 0.5 and meta["config"]["play"] == 150
    assert meta["finished"] and meta["config"]["holdout_every"] == 8
    assert (sub_dir / "agreement.png").stat().st_size > 0
    substitute = f"torch:{sub_dir / 'substitute.pt'}"
    matrix = ["--source", substitute, "--source", tiny_atari_agent, "--victim", tiny_atari_agent]
    args = ["transfer", *matrix, "--eps", "0.01", "--episodes", "1", "--envs", "1", "--out", str(out)]
    assert run(monkeypatch, *args, *common) == 0
    records = sorted((out / "transfer").glob("*.json"))
    assert len(records) == 2 and (out / "transfer.md").is_file()
    white = next(r for r in map(json.loads, map(Path.read_text, records)) if r["source"] == r["target"])
    assert white["action_change_rate"] == white["source_success_rate"] > 0
    assert white["clean_return"] is not None and white["linf_mean"] == pytest.approx(0.01)
    assert len(list(out.glob("transfer*.png"))) == 2
    stamps = [p.stat().st_mtime_ns for p in records]
    capsys.readouterr()
    assert run(monkeypatch, *args, *common) == 0  # a finished matrix is not played again
    assert [p.stat().st_mtime_ns for p in records] == stamps
    assert "->" not in capsys.readouterr().out
    unbundled = ["--source", "pong-trpo-s9", "--victim", "pong-trpo-s9", "--source", tiny_atari_agent]
    assert run(monkeypatch, *args, *unbundled, "--skip-missing", *common) == 0  # the same pairs, all kept
    assert [p.stat().st_mtime_ns for p in records] == stamps
    assert "left out, not in the zoo yet: pong-trpo-s9\n" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["substitute", "--agent", "{agent}", "--budget", "100", "--play", "200"], "--play must be"),
        (["substitute", "--agent", "{agent}", "--arch", "resnet"], "unknown substitute architecture"),
        (
            ["substitute", "--agent", "{agent}", "--holdout-sticky", "1"],
            "--holdout-sticky: Input should be less than 1",
        ),
        (
            ["substitute", "--agent", "{agent}", "--budget", "0"],
            "--budget: Input should be greater than or equal to 1",
        ),
        (["substitute", "--agent", "{agent}", "--lam", "0.001"], "--lam must be at least one gray level"),
        (["substitute", "--agent", "{agent}", "--budget", "3", "--rounds", "2"], "leaves no state to watch"),
        (["transfer", "--source", "{agent}", "--victim", "{agent}", "--eps", "-1"], "eps must be"),
        (
            ["transfer", "--source", "{agent}", "--victim", "{agent}", "--eps", "0.1", "--attack", "none"],
            "needs an attack",
        ),
        (["transfer", "--source", "nope", "--victim", "{agent}", "--eps", "0.1"], "unknown agent 'nope'"),
        (
            ["transfer", "--source", "pong-a3c-s9", "--victim", "{agent}", "--eps", "0.1", "--skip-missing"],
            "no --source is left",
        ),
    ],
)
def test_black_box_commands_refuse_bad_input(monkeypatch, tiny_atari_agent, tmp_path, capsys, args, message):
    out = tmp_path / "out"
    args = [a.format(agent=tiny_atari_agent) for a in args]
    assert run(monkeypatch, *args, "--game", "pong", "--out", str(out), "--no-progress") == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert not out.exists()


def test_agreement_counts_only_held_out_states_that_are_not_training_states() -> None:
    oracle = Oracle(linear_policy())
    seed_set = Dataset(obs := frames(40), oracle(obs))
    holdout = Dataset(obs := np.concatenate([seed_set.obs[:30], frames(10, seed=9)]), oracle(obs))
    assert np.array_equal(unseen(holdout, seed_set).obs, holdout.obs[30:])
    sub = _substitute()
    (done,) = train_substitute(sub, oracle, seed_set, holdout, epochs=1, progress=False)
    fresh = holdout.obs[30:]
    assert done.held_out == 10 and done.agreement == float(
        (sub.predict(fresh) == holdout.actions[30:]).mean()
    )
    (done,) = train_substitute(_substitute(), oracle, seed_set, seed_set, epochs=1, progress=False)
    assert done.held_out == 0 and done.agreement is None and done.agreement_all is not None


def test_a_transfer_pair_is_played_again_when_its_source_holds_other_weights(
    tiny_atari_agent, tmp_path
) -> None:
    victim = load_torchscript(tiny_atari_agent[len("torch:") :])
    retrained = copy.deepcopy(victim)
    with torch.no_grad():
        next(retrained.net.parameters()).mul_(-1.0)
    held = {"sub": victim, "victim": victim}  # what each name loads to, now
    setting = TransferSetting("pong", "fgsm", "inf", 0.01, None, {}, lambda: FGSM(0.01), lambda: None)

    def matrix() -> TransferRecord:
        (record,) = transfer_matrix(["sub"], ["victim"], held.get, setting, tmp_path, 1, 1, 0, False, False)
        return record

    first = matrix()
    assert first.weights == {"source": weights_digest(victim), "target": weights_digest(victim)}
    (saved,) = (tmp_path / "transfer").glob("*.json")
    stamp = saved.stat().st_mtime_ns
    assert matrix() == first and saved.stat().st_mtime_ns == stamp  # the same weights: not played again
    held["sub"] = retrained  # a substitute retrained into the same folder
    second = matrix()
    assert second.weights["source"] == weights_digest(retrained) != weights_digest(victim)
    assert second.key == first.key and second.action_change_rate != first.action_change_rate
    digests = f"{weights_digest(victim)}-{weights_digest(victim)}"
    kept = tmp_path / "transfer" / "superseded" / f"{first.key}-{digests}.json"
    assert TransferRecord(**json.loads(kept.read_text())) == first  # the old pair is not lost
    assert [r.key for r in ResultStore(tmp_path).transfer_records()] == [first.key]  # nor counted
