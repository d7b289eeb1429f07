"""The `rlattack` command. Bad user input prints one line and exits with status 2."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import torch
import typer

from rlattack.attacks import ATTACKS, build_attack
from rlattack.attacks.base import Attack
from rlattack.errors import UserInputError
from rlattack.files import atomic_write, write_json
from rlattack.policies import Q_VALUE_ALGORITHMS, Policy, load_policy, resolve_device
from rlattack.report import percent, plot_comparison, print_table, summary_table
from rlattack.runner import evaluate
from rlattack.schedules import parse_schedule

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Adversarial attacks on deep RL policies for Atari.",
)


@app.callback()
def _every_command(
    threads: Annotated[
        int | None,
        typer.Option(help="torch CPU threads (default: torch's choice; 1 where other work shares the cores)"),
    ] = None,
) -> None:
    """Adversarial attacks on deep RL policies for Atari."""
    if threads is not None:
        if threads < 1:
            raise UserInputError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)  # oversubscribed OpenMP threads slow CPU runs down many times


Agent = Annotated[str, typer.Option(help="zoo name, sb3:PATH.zip or torch:PATH (TorchScript)")]
Game = Annotated[str | None, typer.Option(help="ALE game; defaults to a zoo victim's own")]
NormOpt = Annotated[str, typer.Option(help="inf, 2 or 1")]
Episodes = Annotated[int, typer.Option(help="whole games to play")]
Envs = Annotated[int, typer.Option(help="envs played in parallel; games are split across them")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda")]
Seed = Annotated[int, typer.Option(help="seed of the envs, of random attacks and of sampled actions")]
SurfaceOpt = Annotated[str, typer.Option(help="stack (whole observation) or frame (newest frame)")]
Quantize = Annotated[bool, typer.Option(help="round attacked frames to uint8 gray levels")]
ScheduleOpt = Annotated[str, typer.Option(help="every, every:N, prob:P or timed:BETA (Lin et al.)")]
TargetOpt = Annotated[
    str | None, typer.Option(help="least-likely, random, action:K or policy:AGENT: makes fgsm/pgd targeted")
]
Steps = Annotated[int, typer.Option(help="PGD steps")]
StepSize = Annotated[float | None, typer.Option(help="PGD step size (default 2.5 * eps / steps)")]
Theta = Annotated[float, typer.Option(help="JSMA change per feature on the [0, 1] scale (< 0 darkens)")]
Gamma = Annotated[float, typer.Option(help="JSMA largest fraction of features changed")]
Progress = Annotated[bool, typer.Option(help="show a progress bar")]
ActOpt = Annotated[
    str, typer.Option(help="greedy, or sample: draw the agent's actions from its policy (actor-critic)")
]
SkipMissing = Annotated[
    bool, typer.Option(help="leave out zoo names that are not bundled yet, instead of refusing them")
]


def _policy_and_game(agent: str, game: str | None, device: str) -> tuple[Policy, str]:
    return load_policy(agent, resolve_device(device)), _game_of(agent, game)


def _game_of(agent: str, game: str | None) -> str:
    """The game asked for, else a zoo victim's own."""
    if game is not None:
        return game
    from agents.zoo import victims

    zoo_game = {v.name: v.game for v in victims()}.get(agent)
    if zoo_game is None:
        raise UserInputError(f"--game is needed for {agent} (only zoo victims know their game)")
    return zoo_game


def _setting(
    attack: str,
    norm: str,
    eps: float,
    schedule: str,
    target: str | None = None,
    theta: float = 1.0,
    gamma: float = 0.1,
) -> str:
    """A short row label for tables and plots."""
    if attack == "none":
        return "clean"
    what = f"jsma theta={theta:g} gamma={gamma:g}" if attack == "jsma" else f"{attack} L{norm} eps={eps:g}"
    return " ".join([what] + [x for x in (target and f"->{target}", schedule != "every" and schedule) if x])


def _acted(act: str) -> str:
    """Titles name sampled actions; greedy ones are the convention."""
    return ", actions sampled" if act == "sample" else ""


@app.command()
def zoo(
    curves: Annotated[
        Path | None,
        typer.Option(help="also draw every victim's learning curve beside its bar into this .png/.pdf/.svg"),
    ] = None,
    window: Annotated[int, typer.Option(help="training games averaged per point of a curve")] = 50,
) -> None:
    """List the bundled victims and their clean scores measured by `rlattack eval`: greedy (the
    convention, judged against the bar) and, for actor-critic victims, with sampled actions."""
    from rich.table import Table

    from agents.zoo import check_window, victims

    check_window(window)
    found = victims()
    if curves is not None:  # first: bad input fails before anything is printed
        from agents.curves import write_curves

        write_curves(found, curves, window)
    table = Table(title="rlattack zoo")
    columns = ("name", "game", "algorithm", "training frames", "wall time", "clean score", "sampled", "bar")
    for column in (*columns, "note"):
        table.add_column(column)

    def shown(s: dict[str, Any] | None, missing: str) -> str:
        if s is None:
            return missing
        return f"{s['return_mean']:.1f} ± {s['return_std']:.1f} ({s['episodes']} games)"

    for v in found:
        q_values = v.algorithm in Q_VALUE_ALGORITHMS
        sampled = shown(v.clean_score_sampled, "greedy only" if q_values else "not measured")
        seconds = v.meta.get("wall_seconds")
        wall = "?" if seconds is None else f"{seconds / 3600:.1f} h"
        met = {True: "met", False: "[bold red]below[/]", None: "?"}[v.meets_bar]
        bar = "" if v.bar is None else f"{v.bar:g}: {met}"
        clean = shown(v.clean_score, "not measured")
        table.add_row(
            v.name, v.game, v.algorithm, f"{v.frames:,}", wall, clean, sampled, bar, v.meta.get("note", "")
        )
    print_table(table)
    if curves is not None:
        print(f"wrote {curves}")


@app.command("eval")
def eval_(
    agent: Agent,
    attack: Annotated[str, typer.Option(help=", ".join(ATTACKS))] = "none",
    norm: NormOpt = "inf",
    eps: Annotated[float, typer.Option(help="budget on the [0, 1] scale (1/255 = one gray level)")] = 0.0,
    episodes: Episodes = 10,
    envs: Envs = 1,
    device: Device = "auto",
    seed: Seed = 0,
    game: Game = None,
    surface: SurfaceOpt = "stack",
    quantize: Quantize = False,
    schedule: ScheduleOpt = "every",
    target: TargetOpt = None,
    steps: Steps = 10,
    step_size: StepSize = None,
    theta: Theta = 1.0,
    gamma: Gamma = 0.1,
    act: ActOpt = "greedy",
    json_path: Annotated[Path | None, typer.Option("--json", help="write summary and games here")] = None,
    progress: Progress = True,
) -> None:
    """Play whole games with the agent under attack and print what it lost."""
    built = build_attack(
        attack,
        eps,
        norm,
        surface,
        quantize,
        seed,  # type: ignore[arg-type]
        target=target,
        steps=steps,
        step_size=step_size,
        theta=theta,
        gamma=gamma,
    )
    when = parse_schedule(schedule, seed)
    if envs < 1:
        raise UserInputError(f"--envs must be >= 1, got {envs}")
    policy, game = _policy_and_game(agent, game, device)
    result = evaluate(policy, game, built, when, episodes, envs, seed, progress, act=act)  # type: ignore[arg-type]
    label = _setting(attack, norm, eps, schedule, target, theta, gamma)
    print_table(summary_table([(label, result.summary)], title=f"{agent} on {game}{_acted(act)}"))
    if json_path is not None:
        config: dict[str, Any] = {
            "agent": agent,
            "game": game,
            "attack": attack,
            "norm": norm,
            "eps": eps,
            "surface": surface,
            "quantize": quantize,
            "schedule": schedule,
            "target": target,
            "steps": steps,
            "step_size": step_size,
            "theta": theta,
            "gamma": gamma,
            "envs": envs,
            "seed": seed,
            "act": act,
            "device": str(policy.device),
        }
        write_json(json_path, {"config": config, **result.to_dict()})


@app.command()
def compare(
    agent: Agent,
    attack: Annotated[str, typer.Option(help=", ".join(ATTACKS[1:]))] = "fgsm",
    norm: NormOpt = "inf",
    eps: Annotated[list[float] | None, typer.Option(help="budgets; repeat the option")] = None,
    episodes: Episodes = 2,
    envs: Envs = 2,
    device: Device = "auto",
    seed: Seed = 0,
    game: Game = None,
    surface: SurfaceOpt = "stack",
    quantize: Quantize = False,
    act: ActOpt = "greedy",
    out: Annotated[Path, typer.Option(help="folder for compare.json and compare.png")] = Path("demo"),
    progress: Progress = True,
) -> None:
    """Clean play against the same games under attack at each eps: a table and a plot."""
    attacks = [("clean", None)] + [
        (_setting(attack, norm, e, "every"), build_attack(attack, e, norm, surface, quantize, seed))  # type: ignore[arg-type]
        for e in eps or [1 / 255, 4 / 255]
    ]
    policy, game = _policy_and_game(agent, game, device)
    rows = []
    for label, built in attacks:
        result = evaluate(policy, game, built, None, episodes, envs, seed, progress, act=act)  # type: ignore[arg-type]
        rows.append((label, result.summary))
        print(f"{label}: {result.summary['return_mean']:.2f}", file=sys.stderr)
    print_table(summary_table(rows, title=f"{agent} on {game}{_acted(act)}, {episodes} games each"))
    table = [{"setting": label, "summary": summary} for label, summary in rows]
    write_json(out / "compare.json", {"agent": agent, "game": game, "act": act, "rows": table})
    title = f"{agent} on {game}{_acted(act)}: clean vs {attack} L{norm}"
    plot_comparison(rows, out / "compare.png", title=title)
    print(f"wrote {out / 'compare.json'} and {out / 'compare.png'}")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="grid config, .yaml or .toml (see experiments/)")],
    out: Annotated[
        Path | None, typer.Option(help="results directory; default: beside CONFIG, named after it")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="local (one cell after another) or ray (cells as tasks)")
    ] = "local",
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda; overrides the config's")] = None,
    ray_address: Annotated[
        str | None, typer.Option(envvar="RAY_ADDRESS", help="Ray cluster to join; default: a local instance")
    ] = None,
    extend: Annotated[bool, typer.Option(help="add a changed grid's cells to an existing --out")] = False,
    skip_missing: SkipMissing = False,
    progress: Progress = True,
) -> None:
    """Run a grid of evaluations; re-running continues where it stopped (finished cells are kept)."""
    from rlattack.experiments import run_grid
    from rlattack.store import ResultStore

    out = out or config.with_suffix("")
    try:
        done = run_grid(config, out, backend, device, ray_address, extend, progress, skip_missing)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        finished = len(ResultStore(out).finished())
        print(f"interrupted: {finished} finished cells are saved in {out}; run the same command to go on")
        sys.exit(130)
    summaries = {r["id"]: r["summary"] for r in done.store.records()}
    rows = [(cell.label, summaries[cell.id]) for cell in done.cells]
    print_table(summary_table(rows, title=f"{config.name}: {len(rows)} cells"))
    again = ""
    if done.replayed:
        again = (
            f" ({done.replayed} again: measured on other weights than the agent's now, or unrecorded ones)"
        )
    print(
        f"{done.computed} cells computed{again}, {done.skipped} already there; "
        f"results in {out / 'summary.csv'} and {out / 'summary.parquet'}"
    )


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="a results directory written by `rlattack run`")],
    out: Annotated[Path | None, typer.Option(help="where the figures go; default: RESULTS/report")] = None,
) -> None:
    """Figures (return and action-change rate vs eps, transfer heatmaps) and a markdown summary."""
    from rlattack.grid_report import write_report

    written = write_report(results, out or results / "report")
    print("\n".join(f"wrote {path}" for path in written))


@app.command()
def video(
    agent: Agent,
    out: Annotated[Path, typer.Option(help=".mp4 or .gif")] = Path("episode.mp4"),
    attack: Annotated[str, typer.Option(help=", ".join(ATTACKS))] = "fgsm",
    norm: NormOpt = "inf",
    eps: Annotated[float, typer.Option(help="budget on the [0, 1] scale")] = 1 / 255,
    device: Device = "auto",
    seed: Seed = 0,
    game: Game = None,
    surface: SurfaceOpt = "stack",
    quantize: Quantize = False,
    schedule: ScheduleOpt = "every",
    max_steps: Annotated[
        int | None, typer.Option(help="stop after this many steps (default: whole game)")
    ] = None,
    fps: Annotated[int, typer.Option(help="frames per second of the video")] = 30,
) -> None:
    """One game side by side: the screen, what the agent saw, and the perturbation amplified."""
    from rlattack.video import record_episode

    built = build_attack(attack, eps, norm, surface, quantize, seed)  # type: ignore[arg-type]
    when = parse_schedule(schedule, seed)
    policy, game = _policy_and_game(agent, game, device)
    summary = record_episode(policy, game, built, when, out, seed=seed, max_steps=max_steps, fps=fps)
    print(
        f"wrote {out}: {summary['steps']} steps, score {summary['score']:g}, "
        f"action changed on {summary['changed']} of {summary['attacked']} attacked steps"
    )


@app.command()
def substitute(
    agent: Annotated[str, typer.Option(help="the target: zoo name, sb3:PATH.zip or torch:PATH")],
    out: Annotated[
        Path, typer.Option(help="folder for substitute.pt, substitute.json, agreement.png")
    ] = Path("substitute"),
    budget: Annotated[
        int, typer.Option(help="most queries: watched states plus augmentation labels")
    ] = 100_000,
    play: Annotated[
        int | None,
        typer.Option(help="states watched, each a query (default: what the rounds leave of the budget)"),
    ] = None,
    rounds: Annotated[int, typer.Option(help="Jacobian augmentation rounds; each doubles the set")] = 0,
    lam: Annotated[float, typer.Option(help="augmentation step on the [0, 1] scale")] = 0.1,
    tau: Annotated[int, typer.Option(help="rounds between sign flips of the augmentation step")] = 2,
    arch: Annotated[
        str, typer.Option(help="mnih2013 (default, unlike the victims' nature), nature or mlp")
    ] = ("mnih2013"),
    members: Annotated[
        int, typer.Option(help="networks trained side by side from other initialisations, answering as one")
    ] = 1,
    epochs: Annotated[int, typer.Option(help="training passes over the set after each round")] = 8,
    batch_size: Annotated[int, typer.Option(help="training minibatch")] = 128,
    lr: Annotated[float, typer.Option(help="Adam step size (the start of the cosine schedule)")] = 1e-3,
    lr_schedule: Annotated[
        str, typer.Option(help="cosine (from --lr to 0 over each round's epochs) or constant")
    ] = "cosine",
    explore: Annotated[
        float, typer.Option(help="chance of a random move instead of the target's while watching")
    ] = 0.0,
    sticky: Annotated[float, typer.Option(help="sticky-action probability of the watched games")] = 0.1,
    holdout: Annotated[int, typer.Option(help="held-out states from other games, for the agreement")] = 5_000,
    holdout_sticky: Annotated[
        float, typer.Option(help="sticky-action probability of the held-out games (the convention: 0)")
    ] = 0.0,
    envs: Envs = 8,
    device: Device = "auto",
    seed: Seed = 0,
    game: Game = None,
    progress: Progress = True,
) -> None:
    """Train a substitute of AGENT from its actions only (imitation + Jacobian augmentation)."""
    from rlattack.report import plot_agreement
    from rlattack.store import code_version
    from rlattack.substitute import Oracle, Round, Substitute, noise_stability, train_substitute, watch

    play = budget // 2 ** max(rounds, 0) if play is None else play  # each round doubles the set
    if play < 1 and rounds > 0:
        raise UserInputError(f"a budget of {budget} leaves no state to watch before {rounds} doublings")
    if play < 1 or play > budget:
        raise UserInputError(f"--play must be between 1 and --budget ({budget}), got {play}")
    if round(lam * 255) < 1 or holdout < 1:
        raise UserInputError(
            f"need --lam of at least one gray level (lam * 255 rounds to >= 1) and --holdout >= 1 "
            f"(got {lam}, {holdout})"
        )
    if rounds < 0 or tau < 1 or epochs < 1 or batch_size < 1 or not lr > 0 or members < 1:
        raise UserInputError(
            "need --rounds >= 0, --tau >= 1, --epochs >= 1, --batch-size >= 1, --lr > 0 and --members >= 1"
        )
    if not (0 <= explore <= 1 and 0 <= sticky < 1 and 0 <= holdout_sticky < 1):
        raise UserInputError("need --explore in [0, 1] and --sticky and --holdout-sticky in [0, 1)")
    target, game = _policy_and_game(agent, game, device)
    sub = Substitute(
        arch, target.obs_shape, target.n_actions, lr, str(target.device), seed, members, lr_schedule
    )
    oracle = Oracle(target, budget)
    # The target's own play in other games (env seeds far from the attacker's), one step in 8 so
    # that the set spans whole games; not charged to the attacker.
    referee = Oracle(target)
    every = 8
    held_out = watch(
        referee, game, holdout, envs, seed + 1_000_000, progress=progress, sticky=holdout_sticky, every=every
    )
    stability = noise_stability(referee, held_out, seed=seed)
    print(
        f"the target keeps its action under +-1 gray level of random noise on {stability:.1%} "
        "of the held-out states (a reference beside the agreement)"
    )
    seed_set = watch(oracle, game, play, envs, seed, progress=progress, explore=explore, sticky=sticky)
    config = {"agent": agent, "game": game, "budget": budget, "play": play, "rounds": rounds, "lam": lam}
    config |= {"tau": tau, "arch": arch, "members": members, "epochs": epochs, "batch_size": batch_size}
    config |= {"lr": lr, "lr_schedule": lr_schedule}
    config |= {"explore": explore, "sticky": sticky, "holdout": holdout, "holdout_sticky": holdout_sticky}
    config |= {"holdout_every": every, "envs": envs, "seed": seed}
    history: list[dict[str, Any]] = []

    def save(sub: Substitute, done: Round) -> None:
        history.append(dict(vars(done)))
        print(
            f"round {done.round}: {done.points} points, {done.queries} queries, "
            f"agreement {percent(done.agreement)} on {done.held_out} unseen held-out states "
            f"({done.agreement_all:.1%} on all {len(held_out)})"
        )
        atomic_write(out / "substitute.pt", lambda p: sub.save(str(p)))
        write_json(
            out / "substitute.json",
            {
                "use_as": f"torch:{out / 'substitute.pt'}",
                "n_actions": sub.n_actions,
                "obs_shape": list(sub.obs_shape),
                "queries": done.queries,
                "agreement": done.agreement,
                "target_noise_stability": stability,
                "finished": done.round == rounds or oracle.remaining == 0,
                "config": config,
                "code": code_version(),
                "rounds": history,
            },
        )

    train_substitute(sub, oracle, seed_set, held_out, rounds, lam, tau, epochs, batch_size, progress, save)
    plot_agreement(history, out / "agreement.png", f"substitute of {agent} ({arch}) on {game}")
    print(f"wrote {out}; attack with it as --source torch:{out / 'substitute.pt'}")


@app.command()
def transfer(
    source: Annotated[list[str], typer.Option(help="policy the attack is crafted on; repeat for a matrix")],
    victim: Annotated[list[str], typer.Option(help="policy shown what was crafted (the target); repeat")],
    eps: Annotated[float, typer.Option(help="budget on the [0, 1] scale (1/255 = one gray level)")],
    attack: Annotated[str, typer.Option(help=", ".join(ATTACKS[1:]))] = "fgsm",
    norm: NormOpt = "inf",
    target: Annotated[
        str | None,
        typer.Option(
            help="policy induction: the adversary's action (least-likely, random, action:K, policy:AGENT)"
        ),
    ] = None,
    schedule: ScheduleOpt = "every",
    steps: Steps = 10,
    step_size: StepSize = None,
    theta: Theta = 1.0,
    gamma: Gamma = 0.1,
    surface: SurfaceOpt = "stack",
    quantize: Quantize = False,
    episodes: Episodes = 10,
    envs: Envs = 5,
    device: Device = "auto",
    seed: Seed = 0,
    game: Game = None,
    clean: Annotated[bool, typer.Option(help="also play each victim unattacked, for reference")] = True,
    out: Annotated[Path, typer.Option(help="folder for the records, heatmaps and transfer.md")] = Path(
        "transfer"
    ),
    skip_missing: SkipMissing = False,
    act: ActOpt = "greedy",
    progress: Progress = True,
) -> None:
    """Craft on each --source, show it to each --victim: return, transfer rate, source success."""
    from functools import cache

    from rich.table import Table

    from rlattack.grid_report import transfer_figures, transfer_table
    from rlattack.store import TransferRecord
    from rlattack.transfer import TransferSetting, transfer_matrix

    def build() -> Attack:
        return build_attack(
            attack,
            eps,
            norm,
            surface,  # type: ignore[arg-type]
            quantize,
            seed,
            target=target,
            steps=steps,
            step_size=step_size,
            theta=theta,
            gamma=gamma,
        )

    if attack == "none":
        raise UserInputError("transfer needs an attack (fgsm, pgd, jsma or noise)")
    if skip_missing:
        from agents.zoo import not_bundled

        left_out = not_bundled([*source, *victim])
        source, victim = [s for s in source if s not in left_out], [v for v in victim if v not in left_out]
        if left_out:
            print(f"left out, not in the zoo yet: {', '.join(left_out)}")
        for side, names in (("source", source), ("victim", victim)):
            if not names:
                raise UserInputError(f"no --{side} is left: none of them is bundled yet")
    build()  # bad attack options fail here, before any game is played
    parse_schedule(schedule, seed)
    resolved = resolve_device(device)
    load = cache(lambda agent: load_policy(agent, resolved))
    game = _game_of(victim[0], game)
    options = {"schedule": schedule, "surface": surface, "quantize": quantize, "steps": steps}
    options |= {"step_size": step_size, "theta": theta, "gamma": gamma}
    setting = TransferSetting(
        game, attack, norm, eps, target, options, build, lambda: parse_schedule(schedule, seed)
    )

    def announce(r: TransferRecord) -> None:
        print(
            f"{r.source} -> {r.target}: return {r.return_mean:.2f}, transfer {percent(r.action_change_rate)}"
        )

    records = transfer_matrix(
        source,
        victim,
        load,
        setting,
        out,
        episodes,
        envs,
        seed,
        clean,
        progress,
        announce,
        act=act,  # type: ignore[arg-type]
    )
    table = Table(title=f"{attack} L{norm} eps={eps:g} on {game}{_acted(act)}, {episodes} games per pair")
    for column in ("source", "victim", "clean", "attacked", "transfer rate", "source success", "target hit"):
        table.add_column(column, justify="left" if column in ("source", "victim") else "right")
    for r in records:
        table.add_row(
            r.source,
            r.target,
            "-" if r.clean_return is None else f"{r.clean_return:.2f}",
            f"{r.return_mean:.2f} ± {r.return_std:.2f}",
            percent(r.action_change_rate),
            percent(r.source_success_rate),
            percent(r.target_rate),
        )
    print_table(table)
    figures = transfer_figures(records, out)
    atomic_write(out / "transfer.md", lambda p: p.write_text("\n".join(transfer_table(records)) + "\n"))
    print(f"wrote {out / 'transfer.md'} and {len(figures)} heatmaps in {out}")


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 2."""
    try:
        app()  # usage errors (unknown option, non-numeric value) exit with status 2 inside
    except UserInputError as e:
        print(f"rlattack: error: {e}", file=sys.stderr)
        sys.exit(2)
