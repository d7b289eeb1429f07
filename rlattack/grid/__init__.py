"""Grids of attacked evaluations: the config and its cells, running them (locally or on Ray)
into a resumable results directory, and the report of that directory."""

from rlattack.grid.config import Cell, GridConfig, expand, load_grid
from rlattack.grid.report import write_report
from rlattack.grid.run import GridRun, run_cell, run_grid
from rlattack.grid.store import ResultStore, TransferRecord

__all__ = [
    "Cell",
    "GridConfig",
    "GridRun",
    "ResultStore",
    "TransferRecord",
    "expand",
    "load_grid",
    "run_cell",
    "run_grid",
    "write_report",
]
