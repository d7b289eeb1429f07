"""The package's shape: dependencies run one way, attacks import without the emulator, small modules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

LIBRARY = Path(__file__).resolve().parent.parent / "rlattack"


def test_the_library_never_imports_training_code() -> None:
    found = [
        f"{path.relative_to(LIBRARY.parent)}:{n}"
        for path in LIBRARY.rglob("*.py")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.match(r"\s*(from|import) agents\b", line)
    ]
    assert not found, f"rlattack imports agents/ at {found}"


def test_attacks_import_without_the_emulator_or_sb3() -> None:
    code = "import sys, rlattack.attacks; print(sorted({'ale_py', 'stable_baselines3'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_module_of_the_library_is_over_400_lines() -> None:
    sizes = {str(p.relative_to(LIBRARY)): len(p.read_text().splitlines()) for p in LIBRARY.rglob("*.py")}
    assert not {name: n for name, n in sizes.items() if n > 400}
