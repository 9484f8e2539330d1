"""jupyterhub-idle-culler, as a hub-managed service that dies with the hub that started it.

A managed service outlives a hub that is killed (SIGKILL, OOM): the restarted hub starts another culler and
the old one polls a dead API forever. PR_SET_PDEATHSIG makes the kernel stop it together with its hub.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the hub died before prctl took effect
        sys.exit("idle culler: the hub that started it is gone")
    from jupyterhub_idle_culler import main as culler_main

    culler_main()


if __name__ == "__main__":
    main()
