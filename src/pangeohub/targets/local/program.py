"""A forked child that becomes a program: its name in ps, and running its main code as the interpreter would.

Shared by the local target's fork server (servers forked as their person) and the kernel forker inside a
person's server (kernels forked from a template), which must not import each other.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import traceback
from collections import namedtuple


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


def as_fresh_interpreter(argv: list[str], env: dict[str, str], cwd: str) -> None:
    """Redo what Python computes at startup from its environment, for ``argv`` in ``cwd``, in a child forked
    from the fork server (started as ``python -I``: no PYTHONPATH, no user site, no current directory); the
    caller has already set ``os.environ`` to ``env`` and changed to ``cwd``. A process started by Popen is a
    plain ``python``: its ``sys.path``, flags, user site, temporary directory, time zone and ``sitecustomize``
    come from its environment, and here they do too."""
    import importlib
    import site
    import tempfile

    base = [path for path in sys.path if path]  # -I: the interpreter's own dirs and the platform's packages
    extra = [part for part in env.get("PYTHONPATH", "").split(os.pathsep) if part]
    sys.path[:] = [cwd, *extra, *base]
    sys.flags = _plain_flags()
    sys.orig_argv = list(argv)
    site.USER_BASE = site.USER_SITE = None  # computed from HOME when first asked for, as at startup
    tempfile.tempdir = None  # likewise from TMPDIR
    time.tzset()
    importlib.invalidate_caches()
    sys.modules.pop("sitecustomize", None)
    try:
        importlib.import_module("sitecustomize")  # a fresh start imports it from PYTHONPATH, if there
    except ImportError:
        pass
    try:
        import ctypes

        # The child is not dumpable (it changed uid as root); an exec'd process would be. Nothing of root's
        # is in this memory (the fork server reads no secret), so the person may debug their own process.
        ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
    except (OSError, AttributeError):
        pass


def _plain_flags():
    """``sys.flags`` as a plain ``python`` has them (code such as multiprocessing passes them on)."""
    names = sys.flags.__match_args__
    flags = namedtuple("flags", names)(*sys.flags)
    return flags._replace(isolated=0, ignore_environment=0, no_user_site=0, safe_path=False)
