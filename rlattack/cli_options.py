"""Option groups of the `rlattack` command, declared once as pydantic models.

`options(Model, "name")` turns a command's parameter `name: Model` into one command-line option
per field of the model (help from the field's description, choices from `Literal` types) and
hands the command one validated instance. A value the model refuses is one `UserInputError`
line, like every other bad input.
"""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typer.exceptions import TyperException

from rlattack import zoo
from rlattack.attacks.base import Attack
from rlattack.errors import UserInputError, explain
from rlattack.loading import load_policy
from rlattack.policies import Policy, resolve_device
from rlattack.rollout.attacker import Act
from rlattack.rollout.evaluate import Evaluation, evaluate
from rlattack.schedules import Schedule

Command = TypeVar("Command", bound=Callable[..., Any])
Args = TypeVar("Args", bound=BaseModel)
REQUIRED = inspect.Parameter.empty
"""A command's default that makes an option required (`--eps` of `transfer`)."""


class CommandArgs(BaseModel):
    """A script's arguments in CleanRL's style: each field a typed default with its docstring
    below it, which `run_command` shows as the option's help."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Play(BaseModel):
    """How the games are played: which game, how many, where, and how the agent acts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    game: str | None = Field(default=None, description="ALE game; defaults to a zoo victim's own")
    episodes: int = Field(default=10, ge=1, description="whole games to play")
    envs: int = Field(default=1, ge=1, description="envs played in parallel; games are split across them")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="where the policy runs")
    seed: int = Field(default=0, description="seed of the envs, of random attacks and of sampled actions")
    act: Act = Field(
        default="greedy",
        description="greedy, or sample: draw the agent's actions from its policy (actor-critic)",
    )
    progress: bool = Field(default=True, description="show a progress bar")

    def load(self, agent: str) -> tuple[Policy, str]:
        """The agent's policy on this device, and the game to play it on."""
        return load_policy(agent, resolve_device(self.device)), zoo.game_of(agent, self.game)

    def evaluate(
        self, policy: Policy, game: str, attack: Attack | None, schedule: Schedule | None = None
    ) -> Evaluation:
        """These games of `policy` under `attack` (see `rlattack.rollout.evaluate`)."""
        return evaluate(
            policy, game, attack, schedule, self.episodes, self.envs, self.seed, self.progress, act=self.act
        )

    def title(self, agent: str, game: str) -> str:
        """Tables and plots name sampled actions; greedy ones are the convention."""
        return f"{agent} on {game}" + (", actions sampled" if self.act == "sample" else "")


def options(
    model: type[BaseModel],
    param: str,
    /,
    *,
    rename: dict[str, str] | None = None,
    as_text: Iterable[str] = (),
    without: Iterable[str] = (),
    **defaults: Any,
) -> Callable[[Command], Command]:
    """Give a command `model`'s fields as options and its parameter `param` one validated instance.

    Args:
        rename: field -> option name where they differ (`name` -> `attack`).
        as_text: fields read as text on the command line and parsed by the model (eps: "1/255").
        without: fields this command does not offer (they keep the model's default).
        defaults: this command's own defaults, where they differ from the model's.
    """
    rename, as_text, without = rename or {}, set(as_text), set(without)
    fields = {f: info for f, info in model.model_fields.items() if f not in without}

    def option(field: str) -> inspect.Parameter:
        info = fields[field]
        kind = str if field in as_text else info.annotation
        default = defaults.get(field, REQUIRED if info.is_required() else info.default)
        if typing.get_origin(kind) is tuple:  # a repeated option: typer takes lists
            kind, default = list[typing.get_args(kind)[0]], list(default)
        if field in as_text and default not in (None, REQUIRED):
            default = str(default)
        declared = Annotated[
            kind, typer.Option(help=_description(model, field), show_default=_shown(default))
        ]
        return inspect.Parameter(
            rename.get(field, field), inspect.Parameter.KEYWORD_ONLY, annotation=declared, default=default
        )

    def decorate(command: Command) -> Command:
        hints = typing.get_type_hints(command, include_extras=True)
        kept = [
            p.replace(annotation=hints[p.name], kind=inspect.Parameter.KEYWORD_ONLY)
            for p in inspect.signature(command).parameters.values()
            if p.name != param
        ]
        added = [option(field) for field in fields]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            given = {field: kwargs.pop(rename.get(field, field)) for field in fields}
            try:
                kwargs[param] = model(**given)
            except ValidationError as e:
                raise UserInputError(
                    explain(e, fields, lambda f: "--" + rename.get(f, f).replace("_", "-"))
                ) from None
            return command(**kwargs)

        parameters = [*kept, *added]
        del wrapper.__wrapped__  # typer must read the options' signature, not the command's
        wrapper.__dict__["__signature__"] = inspect.Signature(parameters)
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return typing.cast(Command, wrapper)

    return decorate


def _shown(default: Any) -> bool | str:
    """How the help shows a default: a comma-separated one with a space after each comma, so the
    help wraps it at the terminal's edge instead of cutting it off there (`--attacks`)."""
    return default.replace(",", ", ") if isinstance(default, str) and "," in default else True


def _description(model: type[BaseModel], field: str) -> str | None:
    """A field's description; a subclass that only changes a default keeps its parent's."""
    for cls in model.__mro__:
        found = getattr(cls, "model_fields", {}).get(field)
        if found is not None and found.description:
            return found.description
    return None


def run_app(app: typer.Typer, prog: str) -> None:
    """Run a typer app; bad input, typer's own checks (an unknown option, a value of the wrong type
    or outside its choices) and `UserInputError` alike, is one line on stderr and status 2."""
    try:
        code = app(standalone_mode=False, prog_name=prog)
    except TyperException as e:
        message = " ".join(e.format_message().replace("Value error, ", "").split())
        if not message:  # the help was shown instead
            sys.exit(2)
        fail(prog, message, getattr(e, "exit_code", 2))
    except UserInputError as e:
        fail(prog, str(e), 2)
    except typer.Abort:
        fail(prog, "aborted", 1)
    sys.exit(code if isinstance(code, int) else 0)


def fail(prog: str, message: str, status: int) -> None:
    """Say what went wrong on one line of stderr and exit."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(status)


def run_command(main: Callable[[Args], Any], model: type[Args]) -> None:
    """A script's command line: `model`'s fields as options (`options`), parsed and validated,
    then `main(args)`; the script's docstring is its help."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode="markdown")
    script = sys.modules[main.__module__]

    @app.command(help=script.__doc__)
    @options(model, "args")
    def command(args: BaseModel) -> None:
        main(typing.cast(Args, args))

    spec = getattr(script, "__spec__", None)  # `python -m agents.dqn` names itself agents.dqn
    run_app(app, spec.name if spec is not None else Path(script.__file__ or "script").stem)
