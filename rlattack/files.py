"""Writing files so that an interrupted run never leaves a half-written one behind."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from rlattack.errors import UserInputError

STDOUT = "-"
"""An output path that means standard output."""


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Let `write` fill a temporary file beside `path`, then rename it into place.

    A symbolic link is followed: its target is replaced and the link stays a link. What exists
    and is neither a file nor a folder (a device such as /dev/stdout, a FIFO) cannot be replaced
    by a rename, so `write` writes into it directly.
    """
    if path.exists() and not path.is_file() and not path.is_dir():
        write(path)
        return
    if path.is_symlink():
        path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """`payload` as indented JSON into `path`, or onto standard output for `-`."""
    text = json.dumps(payload, indent=2)
    if str(path) == STDOUT:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    atomic_write(path, lambda p: p.write_text(text))


def check_writable(path: Path | None, option: str, folder: bool = False) -> None:
    """Refuse, before any work, an output that could not be written at the end of it.

    A file (`folder=False`) must not be a folder, a folder must not be a file, and the nearest
    folder above that exists must be one this process may create files in: `atomic_write` and
    `mkdir` write there, never into an existing file itself. Nothing is created. The error names
    `option` (`--json`, `--out`) as the user wrote it; None (an output not asked for) passes.
    """
    if path is None or (str(path) == STDOUT and not folder):
        return
    if path.is_symlink():
        path = path.resolve()

    def refuse(problem: str) -> NoReturn:
        raise UserInputError(f"{option} {path}: {problem}")

    if path.is_dir() and not folder:
        refuse("is a folder; name a file in it")
    if path.exists() and not path.is_file() and not path.is_dir():
        if folder or not os.access(path, os.W_OK):
            refuse("is neither a file nor a folder" if folder else "cannot be written (permission denied)")
        return
    if path.exists() and not path.is_dir() and folder:
        refuse("is a file, not a folder")
    existing = next(p for p in (path if folder else path.parent, *path.parents) if p.exists())
    if not existing.is_dir():
        refuse(f"{existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        refuse(f"cannot create files in {existing} (permission denied or a read-only file system)")
