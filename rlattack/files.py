"""Writing files so that an interrupted run never leaves a half-written one behind."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from rlattack.errors import UserInputError


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Let `write` fill a temporary file beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(payload, indent=2)))


def check_writable(path: Path | None, option: str, folder: bool = False) -> None:
    """Refuse, before any work, an output that could not be written at the end of it.

    A file (`folder=False`) must not be a folder, a folder must not be a file, and the nearest
    folder above that exists must be one this process may create files in: `atomic_write` and
    `mkdir` write there, never into an existing file itself. Nothing is created. The error names
    `option` (`--json`, `--out`) as the user wrote it; None (an output not asked for) passes.
    """
    if path is None:
        return

    def refuse(problem: str) -> NoReturn:
        raise UserInputError(f"{option} {path}: {problem}")

    if path.is_dir() and not folder:
        refuse("is a folder; name a file in it")
    if path.exists() and not path.is_dir() and folder:
        refuse("is a file, not a folder")
    existing = next(p for p in (path if folder else path.parent, *path.parents) if p.exists())
    if not existing.is_dir():
        refuse(f"{existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        refuse(f"cannot create files in {existing} (permission denied or a read-only file system)")
