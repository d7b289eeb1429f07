"""The one error type that means "the user asked for something wrong", and how to word it."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import ValidationError


class UserInputError(ValueError):
    """Bad user input: the CLI prints its message on one line and exits with status 2."""


def explain(error: ValidationError, allowed: Iterable[str] = (), named: Callable[[str], str] = str) -> str:
    """A pydantic validation error as one line: each problem with where it is (a field as `named`
    calls it: a config key, a command-line option), unknown keys with the keys that are allowed."""
    problems = []
    for item in error.errors():
        where = ".".join(named(str(part)) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key {where!r} (allowed: {', '.join(allowed)})")
        else:
            message = " ".join(item["msg"].removeprefix("Value error, ").split())
            plain = not where or message.startswith(
                ("unknown", "eps", "bad")
            )  # these say what they are about
            problems.append(message if plain else f"{where}: {message}")
    return "; ".join(problems)
