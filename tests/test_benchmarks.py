"""The benchmarks still start: they are run by hand, so nothing else would notice them break."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCHMARKS.glob("*.py")))
def test_benchmark_starts(script) -> None:
    if script == "jsma_vs_art.py":
        pytest.importorskip("art", reason="ART is a benchmark-only dependency (pip install -e '.[bench]')")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "usage" in done.stdout.lower()
