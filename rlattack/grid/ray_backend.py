"""The Ray backend of a grid: cells as Ray tasks, their records sent back to the driver."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from rlattack.errors import UserInputError

if TYPE_CHECKING:
    from rlattack.grid.config import Cell


def require_ray() -> ModuleType:
    """Ray, or a refusal that says how to install it."""
    try:
        import ray
    except ImportError:
        raise UserInputError("--backend ray needs Ray: pip install 'rlattack[ray]'") from None
    return ray


def run_on_ray(
    run_cell: Callable[[Cell, str, int, str], dict[str, Any]],
    cells: list[Cell],
    device: str,
    threads: int,
    digests: dict[str, str],
    address: str | None,
    finished: Callable[[dict[str, Any]], None],
) -> None:
    """`run_cell` on each cell as a Ray task; each record comes back here as it finishes and goes
    to `finished` at once."""
    ray = require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        # address None: RAY_ADDRESS if set, else a new local instance.
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    gpus = 1 if device == "cuda" else 0
    task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(run_cell)
    pending = {task.remote(cell, device, threads, digests[cell.agent]): cell for cell in cells}
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                pending.pop(ref)
                try:
                    finished(ray.get(ref))
                except ray.exceptions.RayTaskError as e:
                    if isinstance(e.cause, UserInputError):
                        raise e.cause from None
                    raise
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
