"""A forked child that becomes a program: its name in ps, and running its main code as the interpreter would.

Shared by the local target's fork server (servers forked as their person) and the kernel forker inside a
person's server (kernels forked from a template), which must not import each other.
"""

from __future__ import annotations

import atexit
import sys
import threading
import traceback


def set_title(title: str) -> None:
    """Show up as ``title`` in ps, top and pkill (the command line), not as the fork server."""
    try:
        from setproctitle import setproctitle

        setproctitle(title)
        return
    except ImportError:
        pass
    import ctypes

    try:
        ctypes.CDLL(None).prctl(15, title.split()[0].encode()[-15:], 0, 0, 0)  # PR_SET_NAME: the 15-char comm
    except (OSError, AttributeError):
        pass


def run_as_program(main) -> int:
    """Run ``main()`` as the main code of a process, and what the interpreter does when that returns (wait
    for non-daemon threads, run the exit handlers, flush); returns the exit code. The caller ends in
    ``os._exit``: a forked child must not unwind into its parent's code."""
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        threading._shutdown()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    return code
