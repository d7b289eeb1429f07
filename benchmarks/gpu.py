"""Every speed goal of the GPU machine in one command: attacked steps/s against clean, per K.

    PYTHONPATH=. python benchmarks/gpu.py [--device cuda] [--envs 16 --envs 64 --envs 256]

Runs from a plain checkout with the packages installed (no editable install) and writes nothing
but its printout (and `--save PATH` if given). Each part is timed on its own and a part that fails
prints its error and leaves its cells empty, so a failure still ends with a partial table.

Parts, all in one run on one device:
- per K: steps/s of K envs played clean, under FGSM, PGD-10 and MAD-10 (L-inf, eps 1/255): the
  attacker of `rlattack.rollout` on ale-py's vector env, `--steps` steps after a warm-up, each
  against clean (`ratio FGSM/clean K=256` and so on; goals 0.9, 0.5, 0.5);
- a per-env loop of one env and a batch of one under FGSM (how the public repositories loop);
- PGD-10's attack call against 11 forward-and-backward passes at batch K (goal: within 1.3x);
- the runner with a policy of zeros against the bare vector env (goal: at least 0.9);
- batched JSMA: observations/s at batch 512, success rate and mean L0.

The victim is `--agent` (a zoo name); where its weights are not in the checkout, an untrained
network of the same architecture stands in: it costs the same, though its games differ.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from rlattack import zoo
from rlattack.attacks import FGSM, JSMA, MAD, PGD
from rlattack.attacks.base import Attack
from rlattack.cli_options import CommandArgs, run_command
from rlattack.envs import make_vector_env
from rlattack.loading import load_policy
from rlattack.policies import Policy, resolve_device
from rlattack.rollout.attacker import Attacker
from rlattack.rollout.evaluate import evaluate
from rlattack.safetensors_agent import build_architecture


class Args(CommandArgs):
    agent: str = "pong-dqn"
    """victim: a zoo name (an untrained network of its architecture where its weights are absent)"""
    game: str = "pong"
    envs: tuple[int, ...] = (16, 64, 256)
    """values of K"""
    steps: int = 200
    """timed vector-env steps per K and attack, after `warmup` more"""
    warmup: int = 10
    device: str = "auto"
    eps: float = 1 / 255
    jsma_batch: int = 512
    save: Path | None = None
    """also write every figure here"""


def sibling(name: str) -> ModuleType:
    """Another script of `benchmarks/`, loaded from its file (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def victim(args: Args, device: torch.device) -> Policy:
    try:
        return load_policy(args.agent, device)
    except Exception as error:  # missing or damaged weights: stand in
        print(f"{args.agent} not loadable ({error}); an untrained network of its architecture stands in")
        v = zoo.victim(args.agent)
        kwargs = v.meta.get("network_kwargs", {})
        network, to_policy = build_architecture(
            v.algorithm, v.meta["network"], v.n_actions, kwargs, f"untrained {v.name}"
        )
        return to_policy(network.to(device))


def attacked_rate(policy: Policy, game: str, attack: Attack | None, k: int, steps: int, warmup: int) -> float:
    """Env steps/s of K envs, one attacker call per step."""
    env = make_vector_env(game, k)
    try:
        attacker = Attacker(policy, attack, None, k)
        obs, _ = env.reset(seed=0)
        envs, new_game, lengths = np.arange(k), np.ones(k, dtype=bool), np.zeros(k, dtype=int)
        start = 0.0
        for t in range(warmup + steps):
            if t == warmup:
                sync(policy.device)
                start = time.perf_counter()
            step = attacker.observe(obs, new_game, lengths, envs)
            obs, _, terminated, truncated, _ = env.step(step.action)
            new_game = terminated | truncated
            lengths = np.where(new_game, 0, lengths + 1)
        sync(policy.device)
        return k * steps / (time.perf_counter() - start)
    finally:
        env.close()


def main(args: Args) -> None:
    device = torch.device(resolve_device(args.device))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    cores = os.cpu_count()
    print(f"{args.agent} on {args.game}, {device} ({name}), {cores} CPU cores, torch {torch.__version__}")
    policy = victim(args, device)
    figures: dict[str, float] = {}

    def part(label: str, work: Callable[[], None]) -> None:
        start = time.perf_counter()
        try:
            work()
        except Exception:  # report it and go on: the table stays partial
            print(f"[{label}] failed:\n{traceback.format_exc()}", file=sys.stderr)
        print(f"[{label}] {time.perf_counter() - start:.0f} s", flush=True)

    attacks: dict[str, Callable[[], Attack | None]] = {
        "clean": lambda: None,
        "FGSM": lambda: FGSM(args.eps, norm="inf"),
        "PGD-10": lambda: PGD(args.eps, steps=10),
        "MAD-10": lambda: MAD(args.eps, steps=10),
    }
    for k in args.envs:
        for label, make in attacks.items():

            def one(k: int = k, label: str = label, make: Callable[[], Attack | None] = make) -> None:
                figures[f"{label} K={k}"] = attacked_rate(
                    policy, args.game, make(), k, args.steps, args.warmup
                )

            part(f"{label} K={k}", one)

    def loop() -> None:
        throughput = sibling("throughput")
        figures["per-env loop FGSM"] = throughput.per_env_loop(
            policy, FGSM(args.eps, norm="inf"), args.game, 10 * args.steps, 0
        )

    def pgd_cost() -> None:
        k = max(args.envs)
        cost = sibling("pgd_cost")
        figures[f"PGD-10 call K={k} s"], figures[f"11 passes K={k} s"] = cost.pgd_against_passes(
            policy, k, args.eps
        )

    def overhead() -> None:
        runner_overhead = sibling("runner_overhead")
        k = max(args.envs)
        zeros = runner_overhead.Zeros(policy.n_actions).to(device)
        zeros = Policy(zeros, policy.n_actions, policy.obs_shape, input_scale=1.0)
        run = evaluate(zeros, args.game, None, None, k, k, 0, progress=False)
        figures[f"runner K={k}"] = run.summary["steps_per_s"]
        figures[f"bare env K={k}"] = runner_overhead.bare_env(args.game, k, int(run.summary["steps"]), 0)

    def jsma() -> None:
        x = torch.rand(args.jsma_batch, *policy.obs_shape, device=device)
        attack = JSMA()
        attack(policy, x[:8])
        sync(device)
        start = time.perf_counter()
        result = attack(policy, x)
        sync(device)
        figures["JSMA obs/s"] = len(x) / (time.perf_counter() - start)
        figures["JSMA success"] = float(result.success.float().mean())
        figures["JSMA mean L0"] = float(result.l0.mean())

    part("per-env loop", loop)
    part("PGD-10 against 11 passes", pgd_cost)
    part("runner overhead", overhead)
    part("JSMA", jsma)
    report(args, figures)
    if args.save is not None:
        args.save.write_text(json.dumps(figures, indent=2) + "\n")


def report(args: Args, figures: dict[str, float]) -> None:
    """The table of the issue, then one `ratio` line per goal (blank where a part failed)."""

    def cell(key: str, clean: str | None = None) -> str:
        if key not in figures:
            return "-"
        if clean is None or clean not in figures:
            return f"{figures[key]:,.0f}"
        return f"{figures[key]:,.0f} ({figures[key] / figures[clean]:.2f})"

    print("\n| K envs | clean steps/s | FGSM (ratio to clean) | PGD-10 (ratio) | MAD-10 (ratio) |")
    print("| --- | --- | --- | --- | --- |")
    for k in args.envs:
        clean = f"clean K={k}"
        row = [cell(f"{a} K={k}", clean) for a in ("FGSM", "PGD-10", "MAD-10")]
        print(f"| {k} | {cell(clean)} | {' | '.join(row)} |")
    if "per-env loop FGSM" in figures:
        print(f"\nper-env batch-of-one FGSM loop: {figures['per-env loop FGSM']:,.0f} steps/s")
    if "JSMA obs/s" in figures:
        print(
            f"JSMA, batch {args.jsma_batch}: {figures['JSMA obs/s']:,.0f} observations/s, "
            f"success {figures['JSMA success']:.1%}, mean L0 {figures['JSMA mean L0']:.1f}"
        )
    k = max(args.envs)
    goals = [
        (f"FGSM/clean K={k}", f"FGSM K={k}", f"clean K={k}", "goal >= 0.9"),
        (f"PGD-10/clean K={k}", f"PGD-10 K={k}", f"clean K={k}", "goal >= 0.5"),
        (f"MAD-10/clean K={k}", f"MAD-10 K={k}", f"clean K={k}", "goal >= 0.5"),
        (f"PGD-10 call/11 passes K={k}", f"PGD-10 call K={k} s", f"11 passes K={k} s", "goal <= 1.3"),
        (f"runner/bare env K={k}", f"runner K={k}", f"bare env K={k}", "goal >= 0.9"),
    ]
    print()
    for label, numerator, denominator, goal in goals:
        if numerator in figures and denominator in figures:
            print(f"ratio {label} {figures[numerator] / figures[denominator]:.2f} ({goal})")
        else:
            print(f"ratio {label} - (not measured)")


if __name__ == "__main__":
    run_command(main, Args)
