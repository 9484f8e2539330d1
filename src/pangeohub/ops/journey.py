"""The scientist's journey: run the quickstart notebook cell by cell in a user's own kernel.

Shared by the end-to-end test and ``pangeohub check --full``: the notebook people read is the one we run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pangeohub.catalog.quickstart import code_cells
from pangeohub.usersim import ExecResult, SimError, UserSim


@dataclass
class Journey:
    cells: list[ExecResult] = field(default_factory=list)

    @property
    def images(self) -> list[str]:
        return [image for cell in self.cells for image in cell.images]


async def run_quickstart(sim: UserSim, timeout: float = 600) -> Journey:
    """Execute every code cell of the quickstart in one kernel; stop at the first error (with its cell)."""
    journey = Journey()
    kernel = await sim.start_kernel()
    try:
        for number, code in enumerate(code_cells(), 1):
            out = await sim.execute(kernel, code, timeout=timeout)
            journey.cells.append(out)
            if not out.ok:
                raise SimError(f"quickstart cell {number} failed: {out.error}\n--- cell ---\n{code}\n"
                               f"--- stderr ---\n{out.stderr[-1500:]}")
    finally:
        await sim.stop_kernel(kernel)
    return journey


async def journey_phase(ctx) -> str:
    """``pangeohub check --full``: the whole quickstart, with its figure."""
    journey = await run_quickstart(ctx.sim)
    if not journey.images:
        raise SimError("the quickstart ran but produced no figure")
    return f"quickstart notebook: {len(journey.cells)} cells ran, {len(journey.images)} figure(s)"
