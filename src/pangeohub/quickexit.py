"""Ending a long-running platform process without the interpreter's teardown.

Once the hub (or a service the hub runs) has finished its own shutdown, Python still frees every module and
object one by one before the process ends: for the hub, with JupyterHub, SQLAlchemy and the platform imported,
that took 2.3 s of CPU after JupyterHub had logged "...done" (py-spy: the main thread busy with no Python frame
left), and `pangeohub restart hub` and `down` waited for it. Everything that matters is already done by then:
the databases committed, the logs written. So: run the atexit handlers, flush the logs and the standard streams,
and end the process.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from typing import NoReturn


def exit_now(code: int = 0) -> NoReturn:
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or gone: nothing more can be written anyway
            pass
    os._exit(code)
