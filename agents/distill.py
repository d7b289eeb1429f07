"""Certified distillation: a small CNN learns a teacher's greedy choices under interval bounds, on
the states it visits itself while attacked.

    python -m agents.distill --teacher pong-dqn --run-dir runs/pong-distill

Why not robust RL directly: a robust TD update costs about three plain ones, and SA-DQN's schedule
would take days on two cores (agents/zoo/pong-dqn-sa/NOTES.md). Copying a teacher is supervised:
every state is reused for many updates, in large batches, and the labels need no bootstrapping.

Each round collects `--states` observations and trains `--updates` minibatch steps on every
round's states so far (DAgger, Ross et al. 2011). Round 0 the teacher plays. Later the student
plays, with APGD-CE at `--attack-eps` at every step of a share `--attacked` of its envs and a
random action on `--explore` of its steps, so the states an attacker would push it into, and
those of its own clean play, are in the data. The teacher labels every state. The loss (Gowal
et al. 2018's IBP training) is

    kappa * CE(z(x), y) + (1 - kappa) * CE(-m(x), y)

with y the teacher's greedy action and m(x) the interval lower bounds of z_y - z_a over the L-inf
ball of radius eps around x (`rlattack.certify`): where every m is well above 0, no perturbation
in the ball changes the action. eps stays 0 for `--warmup` updates (the student first learns to
play), then rises linearly to `--eps` over `--ramp` updates, while kappa falls from 1 to
`--kappa`. Each state's loss is weighted by the teacher's gap between its two best actions,
relative to the median gap, capped at 1: half of pong-dqn's states have a gap below 0.011, where
its choice is close to arbitrary and certifying it would spend capacity on nothing.

With `--soft T` the clean term learns the teacher's outputs instead of its argmax (Rusu et al.
2016's policy distillation): CE(z(x), softmax(q(x) / T)), q the teacher's outputs (Q-values for
pong-dqn). A near-tie then asks for both tied actions at about equal odds, where a hard label
asks for whichever won by 0.001, and the labels stop contradicting each other from state to
state. The robust term keeps the argmax y: its bounds certify one action. T is in the units of
the teacher's outputs. For pong-dqn, 0.01 (Rusu et al.'s choice for DQN teachers too) is about
its median gap of 0.011: a median gap becomes odds of 3 to 1, a gap of 5 medians 150 to 1 (a hard
label), a gap below 0.003 close to even. Each round's npz keeps the teacher's outputs ("outputs");
a round saved without them is relabelled by the teacher when loaded and saved again.

After each round: 8 clean games (8 envs, so 8 no-op starts: a greedy Pong player replays one
cycle per start, and a student can win from some starts and lose every point from others), 2
games under APGD-CE at `--attack-eps`, and the IBP certified action rate at `--attack-eps` on the
round's held-out tenth, go to `rounds.csv`; the clean games to `curve.csv`. A round ends with a
checkpoint (the student, Adam's state, the round and the update count); Ctrl-C saves one
mid-round. A round's states are kept in `RUN_DIR/data/round-K.npz` (not committed); a machine
without them collects a new round with the current student instead.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import field_validator
from safetensors.torch import load_file, save_file
from torch import Tensor
from tqdm import tqdm

from agents.training import CtrlC, adam_tensors, hardware, load_adam_tensors, run_record
from rlattack.attacks.apgd import APGD
from rlattack.attacks.spec import parse_eps
from rlattack.certify import certified, margin_lower_bounds, network_layers
from rlattack.cli_options import CommandArgs, run_command
from rlattack.files import atomic_write, write_json
from rlattack.loading import load_policy
from rlattack.networks import ActorCritic, build_network
from rlattack.observations import FRAME_SKIP, OBS_SHAPE
from rlattack.policies import Policy
from rlattack.rollout.evaluate import evaluate
from rlattack.rollout.watch import Greedy, watch
from rlattack.safetensors_agent import save_safetensors_agent

ROUNDS_HEADER = [
    "round", "updates", "states", "timesteps", "eps", "kappa", "loss", "accuracy",
    "clean", "attacked", "action_change_rate", "certified",
]  # fmt: skip


class Args(CommandArgs):
    teacher: str = "pong-dqn"
    """zoo victim (or any agent) whose greedy actions the student learns"""
    game: str = "pong"
    seed: int = 1
    """seeds the student's initialisation, the minibatches and the envs of the rounds"""
    run_dir: Path = Path("runs/pong-distill")
    network: str = "small-cnn"
    """the student's network (`rlattack.networks`)"""
    rounds: int = 8
    states: int = 20_000
    """observations collected per round"""
    every: int = 2
    """record every second step of play, so a round spans more games"""
    updates: int = 3_000
    """minibatch steps per round"""
    batch: int = 128
    lr: float = 1e-3
    eps: str = "2/255"
    """the training budget, above the one evaluated, so bounds at it leave room at 1/255"""
    kappa: float = 0.5
    """the clean loss's final weight"""
    warmup: int = 3_000
    ramp: int = 6_000
    attack_eps: str = "1/255"
    """the budget of the attack in the student's rollouts, its evaluation and its certificate"""
    attacked: float = 0.5
    """the share of the student's envs attacked in its rounds"""
    explore: float = 0.03
    weight: bool = True
    """weight states by the teacher's gap (see the module docstring)"""
    weight_cap: float = 1.0
    """the largest weight, in median gaps: above 1, the states where the teacher's choice matters
    most count more than the typical one"""
    soft: float = 0.0
    """the temperature of the teacher's soft targets in the clean term, in its output units; 0
    keeps its argmax (see the module docstring)"""
    threads: int = 1

    @field_validator("eps", "attack_eps")
    @classmethod
    def _a_budget(cls, value: str) -> str:
        """Refused before minutes of loading a run's states, not after."""
        parse_eps(value)
        return value

    @field_validator("soft")
    @classmethod
    def _a_temperature(cls, value: float) -> float:
        """A negative temperature would teach the teacher's worst action."""
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"soft must be a temperature >= 0 (0: hard labels), got {value}")
        return value


class AttackedStudent:
    """The student's greedy actions, with APGD-CE on the observations of a share of the envs.

    The split is by env, not by step: an env attacked at every step reaches the states an
    attacker drives the student into, and an env never attacked the states of its clean play. A
    greedy policy in Pong settles into a cycle, winning or losing every point the same way, so a
    clean cycle that loses shows up only in clean play, and DAgger needs it in the data."""

    def __init__(self, student: Policy, eps: float, share: float, seed: int) -> None:
        self.policy, self.n_actions, self.obs_shape = student, student.n_actions, student.obs_shape
        self.attack = APGD(eps=eps, steps=10, seed=seed)
        self.share = share

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(obs).float() / 255
        hit = torch.arange(len(x)) >= round((1 - self.share) * len(x))
        if hit.any():
            x[hit] = self.attack(self.policy, x[hit]).adv
        with torch.no_grad():
            return self.policy(x).argmax(dim=1).numpy()


def teacher_outputs(teacher: Policy, obs: np.ndarray) -> Tensor:
    """(N, A) the teacher's outputs on uint8 observations, 512 at a time."""
    with torch.no_grad():
        return torch.cat(
            [teacher(torch.as_tensor(o).float() / 255) for o in np.array_split(obs, -(-len(obs) // 512))]
        )


def teacher_labels(outputs: Tensor) -> tuple[Tensor, Tensor]:
    """(N,) the teacher's greedy actions and the gap between its two best outputs."""
    top = outputs.topk(2, dim=1).values
    return outputs.argmax(dim=1), top[:, 0] - top[:, 1]


def robust_loss(
    student: Policy, x: Tensor, y: Tensor, eps: float, kappa: float, target: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """(N,) per-state loss of the module docstring, and the clean logits. `target`, (N, A)
    probabilities, replaces y in the clean term (`--soft`); the robust term certifies y."""
    logits = student(x)
    loss = F.cross_entropy(logits, y if target is None else target, reduction="none")
    if eps > 0:
        bounds = margin_lower_bounds(network_layers(student), x, eps, y)
        loss = kappa * loss + (1 - kappa) * F.cross_entropy(-bounds, y, reduction="none")
    return loss, logits


def schedule(args: Args, update: int) -> tuple[float, float]:
    """eps and kappa at a global update count."""
    share = min(1.0, max(0.0, (update - args.warmup) / args.ramp))
    return parse_eps(args.eps) * share, 1 - (1 - args.kappa) * share


class Run:
    """The student, its optimizer and where the run stands, saved and restored as one."""

    def __init__(self, args: Args, n_actions: int) -> None:
        torch.manual_seed(args.seed)
        self.net: ActorCritic = build_network(args.network, OBS_SHAPE, n_actions)
        self.policy = Policy(self.net, n_actions, name="student")
        for p in self.net.parameters():  # `Policy` freezes what it wraps; the student learns
            p.requires_grad_(True)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=args.lr)
        self.round = self.round_updates = self.updates = self.timesteps = 0

    def save(self, path: Path) -> None:
        state = {f"network.{k}": v.detach().clone() for k, v in self.net.state_dict().items()}
        state |= adam_tensors(self.optimizer, "adam")
        for key in ("round", "round_updates", "updates", "timesteps"):
            state[key] = torch.tensor(getattr(self, key), dtype=torch.int64)
        atomic_write(path, lambda p: save_file(state, str(p)))

    def load(self, path: Path) -> None:
        state = load_file(str(path))
        self.net.load_state_dict(
            {k.removeprefix("network."): v for k, v in state.items() if k.startswith("network.")}
        )
        load_adam_tensors(self.optimizer, state, "adam")
        for key in ("round", "round_updates", "updates", "timesteps"):
            setattr(self, key, int(state[key]))


def collect(args: Args, run: Run, teacher: Policy) -> dict[str, np.ndarray]:
    """One round's states, played by the teacher (round 0) or the attacked student, labelled by
    the teacher."""
    seed = 1000 * args.seed + run.round
    actor = (
        Greedy(teacher)
        if run.round == 0
        else AttackedStudent(run.policy, parse_eps(args.attack_eps), args.attacked, seed)
    )
    data = watch(actor, args.game, args.states, envs=8, seed=seed, explore=args.explore, every=args.every)
    outputs = teacher_outputs(teacher, data.obs)
    labels, gaps = teacher_labels(outputs)
    return {"obs": data.obs, "labels": labels.numpy(), "gaps": gaps.numpy(), "outputs": outputs.numpy()}


def load_round(path: Path, teacher: Policy) -> dict[str, np.ndarray]:
    """A round's states; one saved without the teacher's outputs (before `--soft`) gets them from
    `teacher` and is saved again, by a rename, so a hard link to the old file keeps it as it was."""
    found = dict(np.load(path))
    if "outputs" not in found:
        outputs = teacher_outputs(teacher, found["obs"])
        agree = (teacher_labels(outputs)[0].numpy() == found["labels"]).mean()
        if agree < 0.99:  # not all: another thread count may break a tie of 1e-7 the other way
            raise ValueError(f"{path}: {teacher.name} takes its labels at {agree:.0%} of its states, not all")
        found["outputs"] = outputs.numpy()
        atomic_write(path, lambda p: np.savez(p, **found))
    return found


def train(args: Args, run: Run, rounds: list[dict[str, np.ndarray]], ctrl_c: CtrlC) -> tuple[float, float]:
    """The round's remaining updates on every round's training states; the last loss and the
    minibatch accuracy over the round."""

    def training(key: str) -> Tensor:
        return torch.as_tensor(np.concatenate([r[key][len(r[key]) // 10 :] for r in rounds]))

    obs, labels, gaps = training("obs"), training("labels"), training("gaps")
    targets = (training("outputs") / args.soft).softmax(dim=1) if args.soft > 0 else None
    weights = (gaps / gaps.median()).clamp(max=args.weight_cap) if args.weight else torch.ones(len(gaps))
    generator = torch.Generator().manual_seed(args.seed * 1_000_003 + run.updates)
    loss_value, hits, seen = float("nan"), 0, 0
    bar = tqdm(total=args.updates, initial=run.round_updates, desc=f"round {run.round}", unit="update")
    while run.round_updates < args.updates and not ctrl_c.pressed:
        eps, kappa = schedule(args, run.updates)
        idx = torch.randint(len(obs), (args.batch,), generator=generator)
        x, y, w = obs[idx].float() / 255, labels[idx], weights[idx]
        loss, logits = robust_loss(run.policy, x, y, eps, kappa, None if targets is None else targets[idx])
        loss = (w * loss).sum() / w.sum()
        run.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.net.parameters(), 10.0)
        run.optimizer.step()
        run.updates, run.round_updates = run.updates + 1, run.round_updates + 1
        loss_value, hits, seen = loss.item(), hits + int((logits.argmax(1) == y).sum()), seen + len(y)
        bar.update()
        bar.set_postfix(eps=f"{eps * 255:.2f}/255", loss=f"{loss_value:.3f}", refresh=False)
    bar.close()
    return loss_value, hits / max(seen, 1)


def measure(args: Args, run: Run, held_out: np.ndarray) -> dict[str, float]:
    """Clean play (8 games) and attacked play (2), env seed 0, and the certified rate on
    `held_out`."""
    eps = parse_eps(args.attack_eps)
    clean = evaluate(run.policy, args.game, episodes=8, envs=8, seed=0, progress=False)
    attacked = evaluate(
        run.policy, args.game, APGD(eps=eps, steps=10), episodes=2, envs=2, seed=0, progress=False
    )
    with torch.no_grad():
        rate = certified(run.policy, torch.as_tensor(held_out).float() / 255, eps).float().mean().item()
    run.timesteps += clean.summary["steps"] + attacked.summary["steps"]
    return {
        "clean": clean.summary["return_mean"],
        "attacked": attacked.summary["return_mean"],
        "action_change_rate": attacked.summary["action_change_rate"],
        "certified": rate,
        "games": [(run.timesteps, e.score, e.length) for e in clean.episodes],
    }


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    (args.run_dir / "data").mkdir(parents=True, exist_ok=True)
    teacher = load_policy(args.teacher)
    run = Run(args, teacher.n_actions)
    checkpoint = args.run_dir / "checkpoint.safetensors"
    if checkpoint.exists():
        run.load(checkpoint)
    record = run_record(args.run_dir, args, "distill", network=args.network) | {"teacher": args.teacher}
    started, wall_before = time.time(), float(record.get("wall_seconds", 0.0))
    rounds = [
        load_round(p, teacher) for p in sorted((args.run_dir / "data").glob("round-*.npz"))[: run.round + 1]
    ]

    def save() -> None:
        run.save(checkpoint)
        save_safetensors_agent(
            run.net, args.run_dir / "weights.safetensors", "distill", run.policy.n_actions, args.network
        )
        record.update(
            timesteps=run.timesteps,
            frames=run.timesteps * FRAME_SKIP,
            wall_seconds=round(wall_before + time.time() - started, 1),
            hardware=hardware(),
            updates=run.updates,
        )
        write_json(args.run_dir / "run.json", record)

    with CtrlC() as ctrl_c:
        while run.round < args.rounds and not ctrl_c.pressed:
            if len(rounds) <= run.round:
                found = collect(args, run, teacher)
                run.timesteps += args.states * args.every
                np.savez(args.run_dir / "data" / f"round-{run.round:02d}.npz", **found)
                rounds.append(found)
            loss, accuracy = train(args, run, rounds, ctrl_c)
            if ctrl_c.pressed:
                break
            held_out = rounds[-1]["obs"][: len(rounds[-1]["obs"]) // 10]
            found = measure(args, run, held_out)
            eps, kappa = schedule(args, run.updates)
            row = [
                run.round,
                run.updates,
                sum(len(r["obs"]) for r in rounds),
                run.timesteps,
                eps,
                kappa,
                loss,
                accuracy,
            ]
            row += [found["clean"], found["attacked"], found["action_change_rate"], found["certified"]]
            _append(args.run_dir / "rounds.csv", ROUNDS_HEADER, [row])
            _append(args.run_dir / "curve.csv", ["timesteps", "frames", "score", "length"],
                    [(t, t * FRAME_SKIP, s, n) for t, s, n in found["games"]])  # fmt: skip
            tqdm.write(
                f"round {run.round}: clean {found['clean']:+.1f}, APGD-CE {args.attack_eps} "
                f"{found['attacked']:+.1f} ({found['action_change_rate']:.0%} changed), "
                f"certified {found['certified']:.0%}"
            )
            run.round, run.round_updates = run.round + 1, 0
            save()
    save()


def _append(path: Path, header: list[str], rows: list) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(header)
        writer.writerows(rows)


if __name__ == "__main__":
    run_command(main, Args)
