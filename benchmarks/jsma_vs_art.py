"""Our batched JSMA against IBM ART's `SaliencyMapMethod` on observations of a Pong victim.

    python benchmarks/jsma_vs_art.py [--n 64] [--art-n 8] [--batch 32] [--theta 1.0] [--gamma 0.1]

Same network, observations, theta, gamma and targets (each observation's least-likely action),
torch on the same threads; every figure below is measured in this one run. Prints observations
per second, success rate and mean L0 of ours on `--n` observations, and of ART at its defaults
(batch_size=1) on the first `--art-n` of them (with `--art-batched`, also at our batch size).
ART at its defaults runs on most Pong observations to its gamma limit, about 50 s each on a
2-core CPU, so its share is kept small. Then our cost per sample-iteration next to the floor (one
forward and two backward passes of the network at our batch size); how often the top-k pair
search picks a different pair than the exhaustive one on small inputs; and last `ratio N`
(ours / ART at its defaults, in observations per second).
ART's theta is in input units: the network here takes [0, 1] input, so both use the same theta.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from art.attacks.evasion import SaliencyMapMethod
from art.estimators.classification import PyTorchClassifier
from torch import nn

from rlattack.attacks import JSMA
from rlattack.attacks.jsma import select_pairs
from rlattack.envs import make_vector_env
from rlattack.loading import load_policy
from rlattack.policies import Policy


def collect(policy: Policy, n: int, seed: int) -> np.ndarray:
    """n observations of the victim's own play, one every 7 steps over 8 envs."""
    env = make_vector_env("pong", 8)
    obs, _ = env.reset(seed=seed)
    kept = []
    for t in range(7 * math.ceil(n / 8)):
        if t % 7 == 0:
            kept.append(obs.copy())
        obs, *_ = env.step(policy.act(obs))
    env.close()
    return np.concatenate(kept)[:n]


def floor_per_sample(policy: Policy, x: torch.Tensor, target: torch.Tensor, reps: int = 5) -> float:
    """Seconds per sample of one forward and two vector-Jacobian products at this batch size."""

    def once() -> None:
        xr = x.clone().requires_grad_(True)
        logits = policy(xr)
        torch.autograd.grad(logits.gather(1, target[:, None]).sum(), xr, retain_graph=True)
        torch.autograd.grad(logits.sum(), xr)

    once()
    start = time.perf_counter()
    for _ in range(reps):
        once()
    return (time.perf_counter() - start) / reps / len(x)


def run_ours(policy: Policy, x: torch.Tensor, target: torch.Tensor, args: argparse.Namespace) -> dict:
    attack = JSMA(args.theta, args.gamma)
    advs, iterations = [], []
    start = time.perf_counter()
    for i in range(0, len(x), args.batch):
        result = attack(policy, x[i : i + args.batch], target[i : i + args.batch])
        advs.append(result.adv)
        iterations.append(result.iterations)
    seconds = time.perf_counter() - start
    return {"adv": torch.cat(advs), "seconds": seconds, "iterations": int(torch.cat(iterations).sum())}


def run_art(
    policy: Policy, x: torch.Tensor, target: torch.Tensor, args: argparse.Namespace, batch: int
) -> dict:
    classifier = PyTorchClassifier(
        model=policy,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=policy.n_actions,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    art = SaliencyMapMethod(classifier, theta=args.theta, gamma=args.gamma, batch_size=batch, verbose=False)
    start = time.perf_counter()
    adv = art.generate(x.numpy(), y=target.numpy())
    return {"adv": torch.as_tensor(adv), "seconds": time.perf_counter() - start}


def score(policy: Policy, x: torch.Tensor, adv: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        success = (policy(adv).argmax(1) == target).float().mean().item()
    l0 = (adv != x).flatten(1).sum(1).float().mean().item()
    return success, l0


def pair_disagreement(k: int, trials: int = 200) -> float:
    """Share of first-iteration pair choices where top-k differs from exhaustive, on 4x16x16 inputs."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(4, 16, 4, 2),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 6),
    ).double()
    policy = Policy(net, 6, (4, 16, 16), input_scale=1.0)
    x = torch.rand(trials, 4, 16, 16, dtype=torch.float64).requires_grad_(True)
    logits = policy(x)
    target = logits.argmin(1)
    (alpha,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), x, retain_graph=True)
    (total,) = torch.autograd.grad(logits.sum(), x)
    a, b = alpha.flatten(1), (total - alpha).flatten(1)
    domain = torch.ones_like(a, dtype=torch.bool)
    topk, exhaustive = select_pairs(a, b, domain, "topk", k), select_pairs(a, b, domain, "exhaustive")
    same = (topk.sort(1).values == exhaustive.sort(1).values).all(1)
    return 1 - same.double().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="pong-dqn", help="zoo name, sb3:PATH.zip or torch:PATH")
    parser.add_argument("--n", type=int, default=64, help="observations attacked")
    parser.add_argument("--art-n", type=int, default=8, help="of those, attacked by ART too")
    parser.add_argument("--art-batched", action="store_true", help="also run ART at --batch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--theta", type=float, default=1.0)
    parser.add_argument("--gamma", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    policy = load_policy(args.agent)
    x = torch.as_tensor(collect(policy, args.n, args.seed)).float() / 255
    with torch.no_grad():
        target = policy(x).argmin(1)
    print(
        f"{args.agent}: {len(x)} observations, theta={args.theta}, gamma={args.gamma}, "
        f"batch={args.batch}, {args.threads} torch threads"
    )

    ours = run_ours(policy, x, target, args)
    runs = [("ours", ours)]
    art_x, art_target = x[: args.art_n], target[: args.art_n]
    batches = (1, args.batch) if args.art_batched else (1,)
    for batch in batches:
        runs.append((f"ART batch_size={batch}", run_art(policy, art_x, art_target, args, batch)))
    for name, run in runs:
        on = x if name == "ours" else art_x
        success, l0 = score(policy, on, run["adv"], target if name == "ours" else art_target)
        print(
            f"{name:>20}: {len(on) / run['seconds']:8.2f} obs/s   success {success:6.1%}   "
            f"mean L0 {l0:7.1f}   ({len(on)} observations)"
        )
    art_default = runs[1][1]

    floor = floor_per_sample(policy, x[: args.batch], target[: args.batch])
    per_iteration = ours["seconds"] / max(ours["iterations"], 1)
    print(
        f"ours per sample-iteration: {1000 * per_iteration:.3f} ms; floor (1 forward + 2 backward at "
        f"batch {args.batch}): {1000 * floor:.3f} ms; ours / floor = {per_iteration / floor:.2f}"
    )
    for k in (8, 32):
        print(
            f"top-k pair search (k={k}) picks another pair than exhaustive in "
            f"{pair_disagreement(k):.1%} of 200 first iterations (4x16x16 inputs, 1024 features)"
        )
    ours_rate, art_rate = len(x) / ours["seconds"], len(art_x) / art_default["seconds"]
    print(f"ratio {ours_rate / art_rate:.2f}")


if __name__ == "__main__":
    main()
