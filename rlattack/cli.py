"""The `rlattack` command: each command a few lines over the library.

Bad user input prints one line and exits with status 2: typer's own checks (an unknown option,
a value of the wrong type or outside its choices) and the library's `UserInputError` alike.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import torch
import typer

from rlattack import zoo
from rlattack.attacks.spec import AttackSpec
from rlattack.blackbox.workflow import SubstituteSettings
from rlattack.cli_options import REQUIRED, Play, options, run_app
from rlattack.errors import UserInputError
from rlattack.files import STDOUT, check_writable, write_json
from rlattack.robustness.settings import RobustnessSettings
from rlattack.schedules import FORMS, parse_schedule
from rlattack.tables import print_table, summary_table

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    rich_markup_mode="markdown",
    help="Adversarial attacks on deep RL policies for Atari.",
)


@app.callback()
def _every_command(
    threads: Annotated[
        int | None,
        typer.Option(
            min=1, help="torch CPU threads (default: torch's choice; 1 where other work shares the cores)"
        ),
    ] = None,
) -> None:
    """Adversarial attacks on deep RL policies for Atari."""
    if threads is not None:
        torch.set_num_threads(threads)  # oversubscribed OpenMP threads slow CPU runs down many times


AgentOpt = Annotated[
    str,
    typer.Option(
        "--agent",
        help="zoo name, sb3:PATH.zip, safetensors:PATH (weights only: runs nothing from the file) or "
        "torch:PATH (torch.jit.load unpickles: the file can run any code)",
    ),
]
ScheduleOpt = Annotated[str, typer.Option(help=f"{FORMS}; timed is Lin et al.'s")]
SkipMissing = Annotated[
    bool, typer.Option(help="leave out zoo names that are not bundled yet, instead of refusing them")
]
ATTACK = {"rename": {"name": "attack"}, "as_text": ("eps",)}
"""The attack's options: `--attack NAME`, and `--eps` as a number or k/255."""


@app.command("zoo")
def zoo_(
    curves: Annotated[
        Path | None,
        typer.Option(help="also draw every victim's learning curve beside its bar into this .png/.pdf/.svg"),
    ] = None,
    window: Annotated[int, typer.Option(min=1, help="training games averaged per point of a curve")] = 50,
    long: Annotated[
        bool, typer.Option("--long", help="add game, wall time, sampled score and notes")
    ] = False,
) -> None:
    """List the bundled victims and their clean scores measured by `rlattack eval`, one line each:
    greedy (the convention, judged against the bar); `--long` adds the score with sampled actions
    of actor-critic victims and each victim's note."""
    from rlattack.tables import zoo_notes, zoo_table

    check_writable(curves, "--curves")
    found = zoo.victims()
    if curves is not None:  # first: bad input fails before anything is printed
        from rlattack.curves import write_curves

        write_curves(found, curves, window)
    print_table(zoo_table(found, long=long))
    if long:
        print(zoo_notes(found))
    if curves is not None:
        print(f"wrote {curves}")


@app.command("eval")
@options(Play, "play")
@options(AttackSpec, "spec", **ATTACK)
def eval_(
    agent: AgentOpt,
    spec: AttackSpec,
    play: Play,
    schedule: ScheduleOpt = "every",
    json_path: Annotated[Path | None, typer.Option("--json", help="write summary and games here")] = None,
) -> None:
    """Play whole games with the agent under attack and print what it lost."""
    check_writable(json_path, "--json")
    attack, when = spec.build(play.seed), parse_schedule(schedule, play.seed)
    policy, game = play.load(agent)
    result = play.evaluate(policy, game, attack, when)
    table = summary_table([(spec.label(schedule), result.summary)], title=play.title(agent, game))
    print_table(table, stderr=str(json_path) == STDOUT)
    if json_path is not None:
        setting = {"attack": spec.name, **spec.model_dump(exclude={"name"}), "schedule": schedule}
        config = {"agent": agent, "game": game, **setting, **play.model_dump(include={"envs", "seed", "act"})}
        write_json(json_path, {"config": config | {"device": str(policy.device)}, **result.to_dict()})


@app.command()
@options(Play, "play", episodes=2, envs=2)
@options(AttackSpec, "spec", **ATTACK, without=("eps",), name="fgsm")
def compare(
    agent: AgentOpt,
    spec: AttackSpec,
    play: Play,
    eps: Annotated[
        list[str] | None, typer.Option(help="budgets (number or k/255); repeat the option")
    ] = None,
    out: Annotated[Path, typer.Option(help="folder for compare.json and compare.png")] = Path("demo"),
) -> None:
    """Clean play against the same games under attack at each eps: a table and a plot."""
    from rlattack.plots import plot_comparison

    check_writable(out, "--out", folder=True)
    policy, game = play.load(agent)
    rows = []
    for s in [AttackSpec()] + [spec.with_eps(e) for e in eps or ["1/255", "4/255"]]:
        rows.append((s.label(), play.evaluate(policy, game, s.build(play.seed)).summary))
        print(f"{rows[-1][0]}: {rows[-1][1]['return_mean']:.2f}", file=sys.stderr)
    print_table(summary_table(rows, title=f"{play.title(agent, game)}, {play.episodes} games each"))
    table = [{"setting": label, "summary": summary} for label, summary in rows]
    write_json(out / "compare.json", {"agent": agent, "game": game, "act": play.act, "rows": table})
    plot_comparison(
        rows, out / "compare.png", f"{play.title(agent, game)}: clean vs {spec.name} L{spec.norm}"
    )
    print(f"wrote {out / 'compare.json'} and {out / 'compare.png'}")


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="grid config, .yaml or .toml (see experiments/)")],
    out: Annotated[
        Path | None, typer.Option(help="results directory; default: beside CONFIG, named after it")
    ] = None,
    backend: Annotated[
        Literal["local", "ray"], typer.Option(help="local (one cell after another) or ray (cells as tasks)")
    ] = "local",
    device: Annotated[
        Literal["auto", "cpu", "cuda"] | None, typer.Option(help="overrides the config's device")
    ] = None,
    ray_address: Annotated[
        str | None, typer.Option(envvar="RAY_ADDRESS", help="Ray cluster to join; default: a local instance")
    ] = None,
    extend: Annotated[bool, typer.Option(help="add a changed grid's cells to an existing --out")] = False,
    skip_missing: SkipMissing = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run a grid of evaluations; re-running continues where it stopped (finished cells are kept)."""
    from rlattack.grid.run import run_grid
    from rlattack.grid.store import ResultStore

    out = out or config.with_suffix("")
    try:
        done = run_grid(config, out, backend, device, ray_address, extend, progress, skip_missing)
    except KeyboardInterrupt:
        finished = len(ResultStore(out).finished())
        print(
            f"interrupted: {finished} finished cells are saved in {out}; run the same command to go on",
            file=sys.stderr,
        )
        sys.exit(130)
    summaries = {r["id"]: r["summary"] for r in done.store.records()}
    rows = [(cell.label, summaries[cell.id]) for cell in done.cells]
    print_table(summary_table(rows, title=f"{config.name}: {len(rows)} cells"))
    again = f" ({done.replayed} again: measured on other weights than the agent's now, or unrecorded ones)"
    print(
        f"{done.computed} cells computed{again if done.replayed else ''}, {done.skipped} already there; "
        f"results in {out / 'summary.csv'} and {out / 'summary.parquet'}"
    )


@app.command()
def report(
    results: Annotated[
        list[Path],
        typer.Argument(
            help="a results directory of `rlattack run` or `rlattack robustness`; several of "
            "`rlattack robustness`: their verdicts compared"
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="where the figures go; default: RESULTS/report (needed to compare several)"),
    ] = None,
) -> None:
    """Figures (return and action-change rate vs eps, transfer heatmaps) and a markdown summary;
    of several robustness directories, their curves on one axis and a table side by side."""
    from rlattack.grid.report import write_report

    if len(results) > 1 and out is None:
        raise UserInputError(f"comparing {len(results)} directories needs --out (where compare.md goes)")
    out = out or results[0] / "report"
    check_writable(out, "--out", folder=True)
    if len(results) > 1:
        from rlattack.robustness.compare import write_comparison

        table, written = write_comparison(results, out)
        print_table(table)
    else:
        written = write_report(results[0], out)
    print("\n".join(f"wrote {path}" for path in written))


@app.command()
@options(Play, "play", without=("episodes", "envs", "act", "progress"))
@options(AttackSpec, "spec", **ATTACK, name="fgsm", eps="1/255")
def video(
    agent: AgentOpt,
    spec: AttackSpec,
    play: Play,
    schedule: ScheduleOpt = "every",
    out: Annotated[Path, typer.Option(help=".mp4 or .gif")] = Path("episode.mp4"),
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="stop after this many steps (default: whole game)")
    ] = None,
    fps: Annotated[int, typer.Option(min=1, help="frames per second of the video")] = 30,
) -> None:
    """One game side by side: the screen, what the agent saw, and the perturbation amplified."""
    from rlattack.video import record_episode

    check_writable(out, "--out")
    attack, when = spec.build(play.seed), parse_schedule(schedule, play.seed)
    policy, game = play.load(agent)
    summary = record_episode(policy, game, attack, when, out, seed=play.seed, max_steps=max_steps, fps=fps)
    print(
        f"wrote {out}: {summary['steps']} steps, score {summary['score']:g}, "
        f"action changed on {summary['changed']} of {summary['attacked']} attacked steps"
    )


@app.command()
@options(Play, "playing", without=("episodes", "act"), envs=8)
@options(SubstituteSettings, "settings")
def substitute(
    agent: Annotated[
        str,
        typer.Option(help="the target, as --agent: zoo name, sb3:PATH.zip, safetensors:PATH or torch:PATH"),
    ],
    settings: SubstituteSettings,
    playing: Play,
    out: Annotated[
        Path, typer.Option(help="folder for substitute.pt, substitute.json, agreement.png")
    ] = Path("substitute"),
) -> None:
    """Train a substitute of AGENT from its actions only (imitation + Jacobian augmentation)."""
    from rlattack.blackbox.workflow import make_substitute

    check_writable(out, "--out", folder=True)
    target, game = playing.load(agent)
    make_substitute(agent, target, game, settings, out, playing.envs, playing.seed, playing.progress)
    print(f"wrote {out}; attack with it as --source torch:{out / 'substitute.pt'}")


@app.command()
@options(Play, "play", envs=5)
@options(AttackSpec, "spec", **ATTACK, name="fgsm", eps=REQUIRED)
def transfer(
    source: Annotated[list[str], typer.Option(help="policy the attack is crafted on; repeat for a matrix")],
    victim: Annotated[list[str], typer.Option(help="policy shown what was crafted (the target); repeat")],
    spec: AttackSpec,
    play: Play,
    schedule: ScheduleOpt = "every",
    clean: Annotated[bool, typer.Option(help="also play each victim unattacked, for reference")] = True,
    out: Annotated[Path, typer.Option(help="folder for the records, heatmaps and transfer.md")] = Path(
        "transfer"
    ),
    skip_missing: SkipMissing = False,
) -> None:
    """Craft on each --source, show it to each --victim: return, transfer rate, source success."""
    from rlattack.blackbox.transfer import TransferSetting, transfer_matrix, write_transfer_report
    from rlattack.grid.store import TransferRecord
    from rlattack.loading import load_policy
    from rlattack.policies import resolve_device
    from rlattack.tables import percent, transfer_summary

    check_writable(out, "--out", folder=True)
    if skip_missing:
        source, victim = zoo.skip_unbundled(source=source, victim=victim)
    setting = TransferSetting.of(zoo.game_of(victim[0], play.game), spec, schedule, play.seed)
    load = cache(lambda agent: load_policy(agent, resolve_device(play.device)))
    games = (play.episodes, play.envs, play.seed, clean, play.progress)

    def announce(r: TransferRecord) -> None:
        print(
            f"{r.source} -> {r.target}: return {r.return_mean:.2f}, transfer {percent(r.action_change_rate)}"
        )

    records = transfer_matrix(source, victim, load, setting, out, *games, announce, act=play.act)
    title = play.title(f"{spec.name} L{spec.norm} eps={spec.eps:g}", setting.game)
    print_table(transfer_summary(records, f"{title}, {play.episodes} games per pair"))
    figures = write_transfer_report(records, out)
    print(f"wrote {out / 'transfer.md'} and {len(figures)} heatmaps in {out}")


@app.command()
@options(Play, "play", without=("act",), episodes=5, envs=5)
@options(RobustnessSettings, "settings", eps=REQUIRED)
def robustness(
    agent: AgentOpt,
    settings: RobustnessSettings,
    play: Play,
    out: Annotated[Path, typer.Option(help="results directory (resumable; `rlattack report` draws it)")],
    json_path: Annotated[Path | None, typer.Option("--json", help="write the summary here")] = None,
) -> None:
    """Every attack of a set at every eps on the same games: the worst case, the robustness curve
    and its area, the certified action rate, (--find-eps) the smallest eps that breaks it, and the
    checks that say whether the verdict can be trusted."""
    from rlattack.robustness.evaluation import RobustnessEvaluation, evaluate_robustness
    from rlattack.tables import robustness_table

    check_writable(out, "--out", folder=True)
    check_writable(json_path, "--json")
    policy, game = play.load(agent)
    games = (play.episodes, play.envs, play.seed, play.device, play.progress)
    result = evaluate_robustness(RobustnessEvaluation(agent, policy, game, settings, out, *games))
    human = sys.stderr if str(json_path) == STDOUT else sys.stdout  # `--json -`: stdout is the JSON's
    print_table(robustness_table(result), stderr=human is sys.stderr)
    failed = [c["name"] for c in result["checks"] if not c["passed"]]
    passed = len(result["checks"]) - len(failed)
    print(
        f"checks: all {passed} passed"
        if not failed
        else f"checks: NOT RELIABLE, {', '.join(failed)} failed ({passed} passed); see the warnings above",
        file=human,
    )
    if json_path is not None:
        write_json(json_path, result)
    print(f"wrote {out / 'robustness.json'} and {out / 'robustness.png'}", file=human)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit status 2."""
    run_app(app, "rlattack")
