"""Dask schedulers and workers forked from the fork server's Dask template, as their person.

Why: a stock start execs ``dask scheduler`` or ``dask worker``, and each spends ~1.8 s of CPU importing
distributed before it does anything; a worker's nanny then starts the worker itself as another fresh Python,
which imports it all again. Forked from a template that has imported them once (``forkserver.DASK_PRELOAD``),
a scheduler or nanny starts at once, and the nanny forks its worker from itself.

The child has become the person in ``forkchild`` (cgroup, limits, groups, uid, environment, home, all before
anything here runs). Then, here:
- it enters the cluster's working directory, where upstream's backend starts Dask processes (and by which
  the usage sampler tells Dask from the person's server);
- it redoes what a fresh Python computes from its environment as it starts (``program.as_fresh_interpreter``:
  ``sys.path`` with PYTHONPATH and the person's user site, flags, temporary directory, time zone), and for a
  named environment over the stack, what that environment's Python adds (``enter_layer``);
- it redoes what dask and distributed computed when the template imported them as root with an empty
  environment: the config (the person's ``~/.config/dask`` and the cluster's ``DASK_*`` variables: its TLS
  files, temporary directory, worker start method), and the CPU count and memory limit, which follow the
  person's cgroup, not the machine;
- it runs the command line as the ``dask`` command would.
What stays the template's: the few settings distributed reads only as it is imported (its logging setup), which
are the platform's defaults, as in a fresh process of anyone who has not changed them.
"""

from __future__ import annotations

import importlib
import os
import sys

from pangeohub.targets.local.program import as_fresh_interpreter, run_as_program

# `dask <program>` -> the click command the dask CLI's entry points name.
PROGRAMS = {"scheduler": "distributed.cli.dask_scheduler", "worker": "distributed.cli.dask_worker"}


def run(request: dict) -> int:
    argv, env, cwd = request["argv"], request["env"], request["cwd"]
    os.chdir(cwd)
    as_fresh_interpreter(argv, env, cwd)
    enter_layer(request.get("layer"))
    refresh_dask()
    program = argv[1]
    main = importlib.import_module(PROGRAMS[program]).main
    sys.argv = [f"dask-{program}", *argv[2:]]
    return run_as_program(main)


def enter_layer(layer: dict | None) -> None:
    """A named environment over the default stack, as its own Python starts: its site-packages (and the ``.pth``
    files there) ahead of the stack's, its prefix and executable. Its packages are only those the stack lacks, at
    versions constrained to the stack's, so nothing the template imported differs from what it would load."""
    if not layer:
        return
    import site

    before = list(sys.path)
    site.addsitedir(layer["site_packages"])
    added = [path for path in sys.path if path not in before]
    first = next((i for i, path in enumerate(before) if path.endswith("site-packages")), len(before))
    sys.path[:] = [*before[:first], *added, *before[first:]]
    sys.prefix = sys.exec_prefix = layer["prefix"]
    sys.executable = layer["python"]


def refresh_dask() -> None:
    """dask's config, CPU count and memory limit as a process started now, here, would compute them."""
    import dask.config
    import dask.system
    import distributed.nanny
    import distributed.system
    import distributed.worker

    dask.config.paths[:] = dask.config._get_paths()  # refresh() reads this very list: it has HOME's now
    dask.config.PATH = os.environ.get("DASK_CONFIG") or os.path.join(os.path.expanduser("~"), ".config", "dask")
    dask.config.refresh()
    cpus = dask.system.cpu_count()
    # Copied by value into these modules at import (`from dask.system import CPU_COUNT`).
    dask.system.CPU_COUNT = distributed.nanny.CPU_COUNT = distributed.worker.CPU_COUNT = cpus
    distributed.system.MEMORY_LIMIT = distributed.system.memory_limit()
