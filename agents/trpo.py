"""Trust region policy optimization (TRPO, Schulman et al. 2015) with GAE (Schulman et al. 2016).

    python -m agents.trpo --game seaquest --seed 1 --run-dir runs/seaquest-trpo

Each update plays `n_steps` steps in each of `n_envs` envs of ale-py's batched vector env (the
policy run once over all envs per step), estimates advantages by GAE with a critic, takes one
natural-gradient step of the policy under a KL bound (`agents.natural_gradient`: conjugate
gradient on Fisher-vector products of a subsample of states, a backtracking line search on the
whole batch that enforces the bound and an improvement of the surrogate) and then fits the critic
to the returns by Adam regression, outside the trust region. The surrogate carries an entropy
bonus: without one, a TRPO policy can turn near deterministic and stop exploring (pong-trpo's
NOTES: 0.15 nats after 2.2M steps of sb3-contrib's TRPO).

The network is the one the zoo loads for TRPO victims, SB3's `CnnPolicy` with
`share_features_extractor=False`: a Nature CNN for the policy and another for the critic.
`weights.safetensors` is written under SB3's names, so `agents.export` bundles a run as it does
any other, and `--init-from` continues any TRPO victim of the zoo, sb3-contrib's included.

Re-running the same command continues from `RUN_DIR/checkpoint.safetensors` (both networks,
the critic's Adam statistics and the step count; no rollout), which Ctrl-C also writes. Copying
that file, `run.json`, `curve.csv` and `updates.csv` into a run directory on another machine and
running the same command there continues the run.
`--game CartPole-v1` (a gymnasium env with flat observations) trains a small MLP, for tests.
`benchmarks/training_speed.py` measures the steps per second against sb3-contrib's TRPO.
"""

from __future__ import annotations

import csv
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors.torch import load_file, save_file
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from torch import Tensor, nn

from agents.a3c import is_atari
from agents.envs import Sb3VecEnv
from agents.natural_gradient import PolicyBatch, StepReport, natural_step
from agents.training import (
    CtrlC,
    RunArgs,
    RunLog,
    adam_tensors,
    continue_from_victim,
    load_adam_tensors,
    run_record,
)
from rlattack.cli_options import run_command
from rlattack.files import atomic_write
from rlattack.networks import ActorCritic, mlp, nature_cnn
from rlattack.observations import FRAME_SKIP
from rlattack.safetensors_agent import build_architecture, save_safetensors_agent
from rlattack.weights import save_weights, shipped_state

NETWORK_KWARGS = {"share_features_extractor": False}
"""The SB3 `CnnPolicy` keywords of the zoo's TRPO victims, which the run record passes on"""

SB3_NAMES = {
    "torso.0.": "features_extractor.cnn.0.",
    "torso.2.": "features_extractor.cnn.2.",
    "torso.4.": "features_extractor.cnn.4.",
    "torso.7.": "features_extractor.linear.0.",
    "value_torso.0.": "vf_features_extractor.cnn.0.",
    "value_torso.2.": "vf_features_extractor.cnn.2.",
    "value_torso.4.": "vf_features_extractor.cnn.4.",
    "value_torso.7.": "vf_features_extractor.linear.0.",
    "policy_head.": "action_net.",
    "value_head.": "value_net.",
}
"""Our actor-critic's tensor names (prefixes) and those of SB3's CnnPolicy, which the zoo builds"""


class Args(RunArgs):
    run_dir: Path = Path("runs/pong-trpo")
    n_envs: int = 16
    """envs stepped together (ale-py's C++ threads); the policy runs once over all of them per step"""
    n_steps: int = 128
    """steps per env in each rollout (16 envs: 2,048 transitions per update)"""
    gamma: float = 0.99
    """discount"""
    gae_lambda: float = 0.95
    """GAE's lambda (1.0: Monte-Carlo returns minus the critic's values)"""
    max_kl: float = 0.01
    """bound on the mean KL(old || new) of each policy step (Schulman et al.'s Atari runs)"""
    entropy_coef: float = 0.01
    """weight of the policy's entropy in the surrogate, on advantages normalised to unit spread"""
    cg_iterations: int = 10
    """conjugate-gradient iterations for the natural-gradient direction (Schulman et al.: 10)"""
    cg_damping: float = 0.1
    """damping added to the Fisher matrix, which a subsample of states leaves singular"""
    fisher_states: int = 256
    """states of the rollout, drawn at random, whose mean KL gives the Fisher matrix. Each of the
    10 Fisher-vector products costs about 6 forward passes of its states on the CPU, so on the
    whole batch they would cost more than everything else together"""
    backtracks: int = 10
    """line-search halvings of the step before the update keeps the old policy"""
    critic_lr: float = 2.5e-4
    """the critic's Adam step size"""
    critic_epochs: int = 1
    """passes of the critic's regression over each rollout; each costs about as much as the
    policy's gradient"""
    critic_batch: int = 64
    """transitions per critic gradient step: 32 Adam steps per rollout of 2,048 (a batch of 64
    costs less per transition on the CPU than one of 256)"""
    snapshots: bool = True
    """also keep the weights and run record of every checkpoint as `snapshots/weights-STEPS.safetensors`
    and `snapshots/run-STEPS.json`: greedy play swings from checkpoint to checkpoint, and a victim
    is chosen among them (`agents.export --snapshot STEPS`)"""


def build_model(game: str, obs_shape: tuple[int, ...], n_actions: int) -> ActorCritic:
    """The policy and critic, each with its own torso: two Nature CNNs for Atari (the zoo's
    TRPO architecture), two small MLPs for flat observations."""
    if not is_atari(game):
        return mlp(math.prod(obs_shape), n_actions)
    policy, critic = nature_cnn(n_actions, obs_shape[0]), nature_cnn(n_actions, obs_shape[0])
    model = ActorCritic(policy.torso, 512, n_actions, input_scale=255.0, value_torso=critic.torso)
    return model.to(memory_format=torch.channels_last)  # 1.6x faster convolutions on the CPU


def sb3_state(model: ActorCritic) -> dict[str, Tensor]:
    """`model`'s tensors under the names of SB3's CnnPolicy, as the zoo builds TRPO victims."""
    return {_rename(k, SB3_NAMES): v for k, v in model.state_dict().items()}


def save_agent(model: ActorCritic, n_actions: int, path: Path) -> None:
    """Write the weights as the zoo's TRPO victims hold them, with the architecture in the file's
    header, so `rlattack eval --agent safetensors:PATH` plays a run's weights as they are."""
    save_safetensors_agent(sb3_state(model), path, "trpo", n_actions, network_kwargs=NETWORK_KWARGS)


def load_victim_weights(model: ActorCritic, n_actions: int, victim: Path, run_dir: Path) -> int:
    """Continue a zoo TRPO victim (`--init-from`): its weights into `model`, its record and learning
    curve into `run_dir`; returns its step count."""
    network, _ = build_architecture("trpo", "nature-cnn", n_actions, NETWORK_KWARGS, "trpo")
    timesteps = continue_from_victim(network, victim, run_dir)
    back = {sb3: ours for ours, sb3 in SB3_NAMES.items()}
    model.load_state_dict({_rename(k, back): v for k, v in shipped_state(network).items()})
    return timesteps


def _rename(name: str, prefixes: dict[str, str]) -> str:
    old = next(p for p in prefixes if name.startswith(p))
    return prefixes[old] + name.removeprefix(old)


def policy_of(model: ActorCritic) -> nn.Sequential:
    """The policy's layers (sharing `model`'s parameters): logits of observations scaled to
    [0, 1]. The rollout buffer holds observations so, converted once per transition rather than
    in each of the update's passes over them."""
    return nn.Sequential(*model.torso, model.policy_head)


def values_of(model: ActorCritic, x: Tensor, chunk: int = 256) -> Tensor:
    """The critic's state values `(N,)` of observations scaled to [0, 1], run in chunks;
    gradients flow where enabled."""
    assert model.value_torso is not None
    parts = [
        model.value_head(model.value_torso(x[i : i + chunk])).squeeze(-1) for i in range(0, len(x), chunk)
    ]
    return torch.cat(parts)


def make_envs(game: str, n_envs: int, seed: int, life_loss: bool) -> VecEnv:
    """Training envs behind SB3's `VecEnv` API; `info["episode"]` holds each game's true score."""
    if is_atari(game):
        return Sb3VecEnv(game, num_envs=n_envs, seed=seed, life_loss=life_loss)
    if life_loss:
        raise ValueError(f"--life-loss needs an Atari game, with lives: {game} has none")
    env = DummyVecEnv([lambda: Monitor(gym.make(game))] * n_envs)
    env.seed(seed)
    return env


@dataclass
class Rollout:
    """One rollout; observations `(n_steps * n_envs, ...)` step-major, scaled to [0, 1], the
    rest `(n_steps, n_envs, ...)`."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    dones: Tensor
    log_probs: Tensor
    last_obs: Tensor


def advantages_and_returns(
    values: Tensor, last_values: Tensor, rewards: Tensor, dones: Tensor, gamma: float, lam: float
) -> tuple[Tensor, Tensor]:
    """GAE(gamma, lambda) advantages `(T, N)` and the critic's targets (advantages + values).

    `dones[t]` says the step t ended its episode: then nothing after it is bootstrapped.
    """
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(last_values)
    next_values = last_values
    for t in reversed(range(len(rewards))):
        live = 1.0 - dones[t].float()
        delta = rewards[t] + gamma * next_values * live - values[t]
        running = delta + gamma * lam * live * running
        advantages[t] = running
        next_values = values[t]
    return advantages, advantages + values


class Trainer:
    """The recipe's state: the networks, the critic's optimizer, the envs and the step count."""

    def __init__(self, args: Args, env: VecEnv, model: ActorCritic, timesteps: int) -> None:
        self.args = args
        self.env = env
        self.model = model
        self.policy = policy_of(model)
        critic = [p for k, p in model.named_parameters() if k.startswith(("value_torso.", "value_head."))]
        self.critic_optimizer = torch.optim.Adam(critic, lr=args.critic_lr)
        self.timesteps = timesteps
        self.obs = self._input(env.reset())
        # One buffer for every rollout: allocating 0.2 GB afresh each time costs page faults
        self.buffer = torch.empty((args.n_steps * env.num_envs, *self.obs.shape[1:]))

    def _input(self, obs: np.ndarray) -> Tensor:
        return torch.as_tensor(obs, dtype=torch.float32) / self.model.input_scale

    def collect(self, stop: CtrlC) -> tuple[Rollout, list[tuple[int, float, int]]] | None:
        """Play one rollout with the current policy; the finished games as (timesteps, score,
        length). None where Ctrl-C stopped it (the partial rollout is dropped)."""
        a, n = self.args, self.env.num_envs
        actions = torch.empty((a.n_steps, n), dtype=torch.int64)
        rewards = torch.empty((a.n_steps, n))
        dones = torch.empty((a.n_steps, n), dtype=torch.bool)
        log_probs = torch.empty((a.n_steps, n, int(self.env.action_space.n)))
        games = []
        for t in range(a.n_steps):
            if stop.pressed:
                return None
            self.buffer[t * n : (t + 1) * n] = self.obs
            with torch.no_grad():
                log_probs[t] = self.policy(self.obs).log_softmax(-1)
            actions[t] = torch.multinomial(log_probs[t].exp(), 1).squeeze(1)
            next_obs, reward, done, infos = self.env.step(actions[t].numpy())
            reward = torch.as_tensor(reward, dtype=torch.float32)
            for i in np.flatnonzero(done):
                info = infos[i]
                if "episode" in info:
                    games.append((self.timesteps + (t + 1) * n, info["episode"]["r"], info["episode"]["l"]))
                if info.get("TimeLimit.truncated"):  # cut off, not lost: the game would have gone on
                    with torch.no_grad():
                        final = self._input(info["terminal_observation"][None])
                        reward[i] += a.gamma * values_of(self.model, final)[0]
            rewards[t], dones[t] = reward, torch.as_tensor(done)
            self.obs = self._input(next_obs)
        return Rollout(self.buffer, actions, rewards, dones, log_probs, self.obs), games

    def update(self, rollout: Rollout) -> tuple[StepReport, float]:
        """One policy step and the critic's regression; returns the step and the critic's loss."""
        a = self.args
        flat_obs = rollout.obs
        with torch.no_grad():
            values = values_of(self.model, flat_obs).view_as(rollout.rewards)
            last = values_of(self.model, rollout.last_obs)
        advantages, returns = advantages_and_returns(
            values, last, rollout.rewards, rollout.dones, a.gamma, a.gae_lambda
        )
        advantages = advantages.flatten()
        batch = PolicyBatch(
            obs=flat_obs,
            actions=rollout.actions.flatten(),
            advantages=(advantages - advantages.mean()) / (advantages.std() + 1e-8),
            old_log_probs=rollout.log_probs.flatten(0, 1),
        )
        fisher = torch.randperm(len(flat_obs))[: a.fisher_states]
        report = natural_step(
            self.policy,
            batch,
            flat_obs[fisher],
            a.max_kl,
            a.entropy_coef,
            a.cg_iterations,
            a.cg_damping,
            a.backtracks,
        )
        return report, self.fit_critic(flat_obs, returns.flatten())

    def fit_critic(self, obs: Tensor, returns: Tensor) -> float:
        """Regress the critic on the returns by minibatch Adam; the mean loss of the last pass."""
        losses = []
        for _ in range(self.args.critic_epochs):
            losses = []
            for idx in torch.randperm(len(obs)).split(self.args.critic_batch):
                loss = (values_of(self.model, obs[idx]) - returns[idx]).pow(2).mean()
                self.critic_optimizer.zero_grad()
                loss.backward()
                self.critic_optimizer.step()
                losses.append(loss.item())
        return float(np.mean(losses))

    def save_checkpoint(self, path: Path) -> None:
        """Both networks, the critic's Adam statistics and the step count (nothing pickled)."""
        state = {f"model.{k}": v.detach().contiguous() for k, v in self.model.state_dict().items()}
        state |= adam_tensors(self.critic_optimizer, "critic_adam")
        state["timesteps"] = torch.tensor(self.timesteps, dtype=torch.int64)
        atomic_write(path, lambda p: save_file(state, str(p)))

    def load_checkpoint(self, path: Path) -> None:
        """Restore what `save_checkpoint` wrote, on this machine or another."""
        state = load_file(str(path))
        self.model.load_state_dict(
            {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
        )
        load_adam_tensors(self.critic_optimizer, state, "critic_adam")
        self.timesteps = int(state["timesteps"])


class UpdateLog:
    """`updates.csv`: one row per update (the policy step's KL, fraction, gains, entropy and the
    critic's loss), which says whether the policy still explores and the steps are taken."""

    HEADER = ("timesteps", "kl", "fraction", "improvement", "expected", "entropy", "critic_loss")

    def __init__(self, run_dir: Path, resumed_at: int) -> None:
        self.path = run_dir / "updates.csv"
        kept: list[list[str]] = []
        if self.path.exists():
            with self.path.open(newline="") as f:
                kept = [row for row in list(csv.reader(f))[1:] if int(row[0]) <= resumed_at]
        with self.path.open("w", newline="") as f:
            csv.writer(f).writerows([self.HEADER, *kept])

    def add(self, timesteps: int, report: StepReport, critic_loss: float) -> None:
        row = [report.kl, report.fraction, report.improvement, report.expected, report.entropy, critic_loss]
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([timesteps, *(f"{x:.6g}" for x in row)])


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = args.run_dir / "checkpoint.safetensors"
    probe = make_envs(args.game, 1, args.seed, args.life_loss)  # a bad option fails before any work
    obs_shape, n_actions = probe.observation_space.shape, int(probe.action_space.n)
    probe.close()
    torch.manual_seed(args.seed)
    model = build_model(args.game, obs_shape, n_actions)
    atari = is_atari(args.game)
    start = 0
    if checkpoint.exists():
        start = int(load_file(str(checkpoint))["timesteps"])
    elif args.init_from is not None:
        start = load_victim_weights(model, n_actions, args.init_from, args.run_dir)
    torch.manual_seed(args.seed * 1_000_003 + start)  # a resumed run does not replay its draws
    env = make_envs(args.game, args.n_envs, 1000 * args.seed + start, args.life_loss)
    trainer = Trainer(args, env, model, start)
    if checkpoint.exists():
        trainer.load_checkpoint(checkpoint)
    network: dict[str, Any] = (
        {"network": "nature-cnn", "network_kwargs": NETWORK_KWARGS} if atari else {"network": "mlp"}
    )
    record = run_record(args.run_dir, args, "trpo", **network)
    log = RunLog(
        args.run_dir, record, FRAME_SKIP if atari else 1, resumed_at=start, total=args.total_timesteps
    )
    updates = UpdateLog(args.run_dir, start)

    def save() -> None:
        trainer.save_checkpoint(checkpoint)
        paths = [args.run_dir / "weights.safetensors"]
        if args.snapshots:
            (args.run_dir / "snapshots").mkdir(exist_ok=True)
            paths.append(args.run_dir / "snapshots" / f"weights-{trainer.timesteps}.safetensors")
        for path in paths:
            if atari:
                save_agent(model, n_actions, path)
            else:
                save_weights(model, path)
        log.save(trainer.timesteps)
        if args.snapshots:  # the record at this step, so that `agents.export --snapshot` can bundle it
            snapshot_record = args.run_dir / "snapshots" / f"run-{trainer.timesteps}.json"
            shutil.copyfile(args.run_dir / "run.json", snapshot_record)

    last_saved = start
    with CtrlC() as ctrl_c:
        try:
            while trainer.timesteps < args.total_timesteps:
                collected = trainer.collect(ctrl_c)
                if collected is None:
                    break
                rollout, games = collected
                report, critic_loss = trainer.update(rollout)
                trainer.timesteps += rollout.actions.numel()
                log.add_games(games)
                log.advance(trainer.timesteps)
                updates.add(trainer.timesteps, report, critic_loss)
                if trainer.timesteps - last_saved >= args.checkpoint_every:
                    last_saved = trainer.timesteps
                    save()
        finally:
            env.close()
            log.close()
    save()


if __name__ == "__main__":
    run_command(main, Args)
