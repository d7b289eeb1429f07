"""The package's shape: dependencies run one way, attacks import without the emulator, small modules."""

from __future__ import annotations

import ast
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


def import_graph() -> dict[str, set[str]]:
    """Module -> the library modules it imports, at the top or inside a function (a lazy import
    still makes a loop: it only delays it)."""
    modules = {
        ".".join(p.relative_to(LIBRARY.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in LIBRARY.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                named = {f"{node.module}.{alias.name}" for alias in node.names}
                # `from rlattack.attacks import base` runs the package's __init__ as well
                found |= named | {node.module}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_the_library_has_no_import_loop() -> None:
    graph, loops = import_graph(), []

    def visit(module: str, path: list[str]) -> None:
        for child in sorted(graph[module]):
            if child in path:
                loops.append(" -> ".join([*path[path.index(child) :], child]))
            elif child not in seen:
                seen.add(child)
                visit(child, [*path, child])

    seen: set[str] = set()
    for module in sorted(graph):
        if module not in seen:
            seen.add(module)
            visit(module, [module])
    assert not loops, "\n".join(loops)
