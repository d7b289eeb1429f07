"""Asynchronous advantage actor-critic (A3C, Mnih et al. 2016), Hogwild on CPU processes, resumable.

    python -m agents.a3c --game pong --seed 1 --run-dir runs/pong-a3c --workers 16

Each of `--workers` processes plays its own env with a local copy of the network. Every `t_max`
steps (or at the end of a game) it computes n-step returns, the policy-gradient, value and
entropy losses, clips the gradient norm and applies the gradient to the shared network through
one RMSProp whose statistics are shared too. Nothing is locked but the global step counter, as in
the paper. The main process only writes the learning curve (true scores) and checkpoints.

Re-running the same command continues from `RUN_DIR/checkpoint.safetensors` (network, RMSProp
statistics and global step count), which Ctrl-C also writes before it stops a run. Atari envs
are the project's training envs (`agents.envs`: the evaluation pipeline, rewards clipped to their
sign); `--game CartPole-v1` (any gymnasium env with flat observations and discrete actions)
trains a small MLP in a minute, for tests.
"""

from __future__ import annotations

import copy
import signal
import time
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from queue import Empty
from typing import Protocol

import gymnasium as gym
import numpy as np
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv
from torch import Tensor, nn
from torch.distributions import Categorical

from agents.envs import Sb3VecEnv
from agents.training import CtrlC, RunArgs, RunLog, continue_from_victim, run_record
from rlattack.cli_options import run_command
from rlattack.files import atomic_write
from rlattack.networks import ActorCritic, build_network
from rlattack.observations import FRAME_SKIP
from rlattack.weights import save_weights


class Args(RunArgs):
    game: str = "pong"
    """ALE game (pong, breakout, ...), or a gymnasium id with flat observations (CartPole-v1) for checks"""
    seed: int = 1
    """seed of the network's initialisation; worker k seeds its env and sampling with 1000 * seed + k"""
    run_dir: Path = Path("runs/pong-a3c")
    workers: int = 16
    """actor-learner processes, each with its own env (16 in Mnih et al.)"""
    t_max: int = 20
    """steps a worker plays between updates: the n of its n-step returns (20, as in the widely
    reproduced PyTorch A3C; on CPU a longer rollout also makes the batched backward pass cheaper)"""
    learning_rate: float = 1e-4
    """RMSProp step size, decayed linearly to 0 at `total_timesteps`; the steps are normalised
    (see `rmsprop_eps`), and 3e-4 let the Pong network's features die out (units that fire on
    some state fell from 60% to 46% over 0.5M steps)"""
    rmsprop_alpha: float = 0.99
    """decay of the shared running average of squared gradients"""
    rmsprop_eps: float = 1e-5
    """added to that average under the square root. Mnih et al.'s 0.1 is far above the squared
    gradients of our summed losses (1e-6 to 1e-4 for most weights): RMSProp then becomes plain SGD
    at lr / 0.3, and 3.6M frames of Pong left the policy uniform (entropy 1.78 of 1.79)"""
    gamma: float = 0.99
    """discount"""
    entropy_coef: float = 0.01
    """weight of the entropy bonus that keeps the policy from collapsing early"""
    value_coef: float = 0.5
    """weight of the squared n-step error of the value head (0.5: the gradient of (R - V)^2 / 2)"""
    max_grad_norm: float = 40.0
    """each worker's gradient is clipped to this global norm before it reaches the shared network"""


def is_atari(game: str) -> bool:
    """ALE games go through `rlattack.envs`; other gymnasium ids (CartPole-v1) are used as they are."""
    return game not in gym.registry or game.startswith("ALE/")


def make_train_env(game: str, seed: int, life_loss: bool = False) -> VecEnv:
    """One env behind SB3's `VecEnv` API: it resets itself, and `info["episode"]` is the true score."""
    if is_atari(game):
        return Sb3VecEnv(game, num_envs=1, seed=seed, life_loss=life_loss)
    if life_loss:
        raise ValueError(f"--life-loss needs an Atari game, with lives: {game} has none")
    env = DummyVecEnv([lambda: Monitor(gym.make(game))])
    env.seed(seed)
    return env


class SharedRMSprop:
    """RMSProp whose running average of squared gradients is one set of tensors in shared memory.

    Mnih et al. 2016 (optimization details) found statistics shared by all threads more robust than
    per-thread ones. Update: g <- alpha g + (1 - alpha) grad^2; theta <- theta - lr grad / sqrt(g + eps).
    """

    def __init__(self, network: nn.Module, alpha: float, eps: float) -> None:
        self.params = dict(network.named_parameters())
        self.square_avg = {name: torch.zeros_like(p).share_memory_() for name, p in self.params.items()}
        self.alpha = alpha
        self.eps = eps

    @torch.no_grad()
    def step(self, grads: dict[str, Tensor], lr: float) -> None:
        """Apply one worker's gradients (by parameter name) to the shared parameters."""
        for name, param in self.params.items():
            grad, avg = grads[name], self.square_avg[name]
            avg.mul_(self.alpha).addcmul_(grad, grad, value=1 - self.alpha)
            param.addcdiv_(grad, avg.add(self.eps).sqrt_(), value=-lr)


def save_checkpoint(path: Path, network: nn.Module, optimizer: SharedRMSprop, timesteps: int) -> None:
    """Network, RMSProp statistics and global step in one safetensors file (nothing pickled)."""
    state = {f"network.{k}": v.detach().clone() for k, v in network.state_dict().items()}
    state |= {f"rmsprop.{k}": v.clone() for k, v in optimizer.square_avg.items()}
    state["timesteps"] = torch.tensor(timesteps, dtype=torch.int64)
    atomic_write(path, lambda p: save_file(state, str(p)))


def load_checkpoint(path: Path, network: nn.Module, optimizer: SharedRMSprop) -> int:
    """Copy a checkpoint into `network` and `optimizer` in place (shared memory stays shared);
    returns its global step."""
    state = load_file(str(path))
    network.load_state_dict(
        {k.removeprefix("network."): v for k, v in state.items() if k.startswith("network.")}
    )
    with torch.no_grad():
        for name, avg in optimizer.square_avg.items():
            avg.copy_(state[f"rmsprop.{name}"])
    return int(state["timesteps"])


class GameLog(Protocol):
    """Where workers report finished games: (global step, true score, length)."""

    def put(self, game: tuple[int, float, int]) -> None: ...


class Worker:
    """One actor-learner: its own env and local network, updating the shared network."""

    def __init__(
        self,
        rank: int,
        args: Args,
        shared: ActorCritic,
        optimizer: SharedRMSprop,
        steps: Synchronized,
        games: GameLog,
    ) -> None:
        self.args = args
        self.shared = shared
        self.optimizer = optimizer
        self.steps = steps
        self.games = games
        self.local = copy.deepcopy(shared)  # a private copy: gradients never race on shared memory
        self.env = make_train_env(args.game, seed=1000 * args.seed + rank, life_loss=args.life_loss)
        self.obs = self.env.reset()

    def _value(self, obs: np.ndarray) -> float:
        with torch.no_grad():
            return float(self.local.logits_and_value(torch.as_tensor(obs, dtype=torch.float32))[1])

    def update(self) -> int:
        """Play up to `t_max` steps from the shared weights, apply one gradient; returns steps played.

        Actions are sampled without a graph and `loss` then runs the network once over the whole
        rollout: the same gradient as building it step by step (the local weights do not change
        in between), with one batched backward pass instead of `t_max`, which on CPU was most of
        a worker's time.
        """
        a = self.args
        self.local.load_state_dict(self.shared.state_dict())
        observations, actions, rewards, finished = [], [], [], []
        done = False
        while len(rewards) < a.t_max and not done:
            obs = torch.tensor(self.obs, dtype=torch.float32)
            with torch.no_grad():
                action = Categorical(logits=self.local(obs)).sample()
            self.obs, reward, dones, infos = self.env.step(action.numpy())
            done, info, r = bool(dones[0]), infos[0], float(reward[0])
            if info.get("TimeLimit.truncated"):  # cut off, not lost: the game would have gone on
                r += a.gamma * self._value(info["terminal_observation"][None])
            if "episode" in info:
                finished.append((len(rewards) + 1, info["episode"]["r"], info["episode"]["l"]))
            observations.append(obs)
            actions.append(action)
            rewards.append(r)
        ret = 0.0 if done else self._value(self.obs)
        returns = []
        for r in reversed(rewards):
            ret = r + a.gamma * ret
            returns.append(ret)
        loss = self.loss(torch.cat(observations), torch.cat(actions), torch.tensor(returns[::-1]))
        self.local.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.local.parameters(), a.max_grad_norm)
        with self.steps.get_lock():
            self.steps.value += len(rewards)
            step = self.steps.value
        for played, score, length in finished:  # reported once counted: the curve never runs ahead
            self.games.put((step - len(rewards) + played, score, length))
        lr = a.learning_rate * max(0.0, 1 - step / a.total_timesteps)
        self.optimizer.step({name: p.grad for name, p in self.local.named_parameters()}, lr)
        return len(rewards)

    def loss(self, observations: Tensor, actions: Tensor, returns: Tensor) -> Tensor:
        """Policy-gradient, value and entropy losses of one rollout, summed over its steps, from
        one forward pass of the local network over all of them."""
        a = self.args
        logits, values = self.local.logits_and_value(observations)
        policy = Categorical(logits=logits)
        advantages = returns - values
        return (
            -(policy.log_prob(actions) * advantages.detach()).sum()
            + a.value_coef * advantages.pow(2).sum()
            - a.entropy_coef * policy.entropy().sum()
        )

    def run(self, stop: EventType) -> None:
        """Update until the step budget is spent or the main process sets `stop`."""
        try:
            while self.steps.value < self.args.total_timesteps and not stop.is_set():
                self.update()
        finally:
            self.env.close()


def _work(
    rank: int,
    args: Args,
    shared: ActorCritic,
    optimizer: SharedRMSprop,
    steps: Synchronized,
    games: Queue,
    stop: EventType,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the main process, which stops us
    torch.set_num_threads(args.threads)
    torch.manual_seed(1000 * args.seed + rank)
    Worker(rank, args, shared, optimizer, steps, games).run(stop)


def _drain(games: Queue, timeout: float) -> list[tuple[int, float, int]]:
    """Finished games reported so far, waiting up to `timeout` seconds for the first."""
    found = []
    try:
        found.append(games.get(timeout=timeout))
        while True:
            found.append(games.get_nowait())
    except Empty:
        return sorted(found)


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    args.run_dir.mkdir(parents=True, exist_ok=True)
    probe = make_train_env(args.game, args.seed, args.life_loss)  # a bad option fails here, not in a worker
    obs_shape, n_actions = probe.observation_space.shape, int(probe.action_space.n)
    probe.close()
    network = "nature-cnn" if is_atari(args.game) else "mlp"
    torch.manual_seed(args.seed)
    shared = build_network(network, obs_shape, n_actions)
    optimizer = SharedRMSprop(shared, args.rmsprop_alpha, args.rmsprop_eps)
    checkpoint = args.run_dir / "checkpoint.safetensors"
    start = 0
    if checkpoint.exists():
        start = load_checkpoint(checkpoint, shared, optimizer)
    elif args.init_from is not None:
        start = continue_from_victim(shared, args.init_from, args.run_dir)
    shared.share_memory()
    record = run_record(args.run_dir, args, "a3c", network=network)
    frames_per_step = FRAME_SKIP if is_atari(args.game) else 1
    log = RunLog(args.run_dir, record, frames_per_step, resumed_at=start, total=args.total_timesteps)

    def save(timesteps: int) -> None:
        save_checkpoint(checkpoint, shared, optimizer, timesteps)
        save_weights(shared, args.run_dir / "weights.safetensors")
        log.save(timesteps)

    ctx = mp.get_context("spawn")  # fork would copy the parent's threads (ALE, Ray) in a broken state
    steps = ctx.Value("q", start)
    games = ctx.Queue()
    stop = ctx.Event()
    workers = [
        ctx.Process(target=_work, args=(k, args, shared, optimizer, steps, games, stop), daemon=True)
        for k in range(args.workers)
    ]
    last_saved = start
    with CtrlC() as ctrl_c:  # Ctrl-C: stop the workers and save where they got to
        for w in workers:
            w.start()
        try:
            while not ctrl_c.pressed:
                running = any(w.is_alive() for w in workers)  # before draining: nothing reported is left
                log.add_games(_drain(games, timeout=1.0 if running else 0.0))
                log.advance(steps.value)
                # A terminal's Ctrl-C reaches a worker too, and stops one still starting up
                if any(w.exitcode for w in workers) and not ctrl_c.pressed:
                    raise RuntimeError("an A3C worker failed (traceback above); the last checkpoint stays")
                if not running:
                    break
                if steps.value - last_saved >= args.checkpoint_every:
                    last_saved = steps.value
                    save(last_saved)
        finally:
            # Workers finish their rollout and leave; killing one mid-update could leave the step
            # counter's lock held. Their reports are read meanwhile: a full queue would hold them up.
            stop.set()
            deadline = time.monotonic() + 60
            while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
                log.add_games(_drain(games, timeout=0.5))
            for w in workers:
                w.terminate()  # a no-op for workers that left
                w.join()
            log.add_games(_drain(games, timeout=0.0))
            log.close()
    save(steps.value)


if __name__ == "__main__":
    run_command(main, Args)
