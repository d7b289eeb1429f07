"""Where a result came from: the time it was written and the code that computed it."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


CODE = ("rlattack", "agents/*.py", "pyproject.toml")
"""Where the checkout's code lives (git pathspecs; `*` also matches `/`)."""


def code_version(root: Path = Path(__file__).resolve().parents[1]) -> dict[str, Any]:
    """Package version and, for a git checkout of rlattack, its commit and whether its code (the
    package, the recipes, pyproject.toml) was edited: results that experiments write into the
    checkout do not count."""
    try:
        found: dict[str, Any] = {"version": version("rlattack")}
    except PackageNotFoundError:
        found = {"version": None}
    found["commit"] = found["dirty"] = None
    if (root / "pyproject.toml").is_file():
        try:
            git = ["git", "-C", str(root)]
            found["commit"] = subprocess.run(
                [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
            ).stdout.strip()
            status = subprocess.run(
                [*git, "status", "--porcelain", "--untracked-files=no", "--", *CODE],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            found["dirty"] = bool(status.strip())
        except (OSError, subprocess.CalledProcessError):
            pass
    return found
