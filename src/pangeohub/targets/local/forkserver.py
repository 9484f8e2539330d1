"""The fork server: a root process that has imported the single-user server once, and forks one child per user.

Why: a stock spawn execs ``jupyterhub-singleuser``, which spends ~1.4 s of CPU importing jupyter_server and
JupyterLab before it does anything. Forked from a process that already holds those modules, a server is up in a
fraction of that, and the children share the imported code pages (copy-on-write) instead of each holding ~120 MiB.

Security is the design constraint, not an afterthought:
- The server never reads a request itself. It accepts a connection and forks at once; the child reads its own
  request. So the parent's memory, which every later child inherits, never holds any user's token or env.
- It runs with a minimal environment (PATH, LANG) and reads no secret; children thus inherit nothing of the hub.
- Only root may connect: the socket lives in a 0700 root directory and the child checks SO_PEERCRED.
- The child (see ``forkchild``) drops every fd, groups, gid, uid and capability, and enters the user's cgroup,
  before any user-writable path or user code is touched.

Run by the supervisor as ``python -I -m pangeohub.targets.local.forkserver <socket>`` (``-I``: no PYTHON* variables,
no user site, no current directory on sys.path).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

# What a single-user server imports before it serves: the server, JupyterHub's extension, JupyterLab and the
# server extensions the install enables (read from the install's own config, like jupyter_server will).
PRELOAD = [
    "jupyterhub.singleuser",
    "jupyterhub.singleuser.extension",
    "jupyter_server.serverapp",
    "jupyter_server.services.kernels.kernelmanager",
    "jupyter_server.services.contents.largefilemanager",
    "jupyter_server.services.sessions.sessionmanager",
    "jupyter_server.gateway.managers",
    "jupyter_client.ioloop",
    "jupyter_client.provisioning.local_provisioner",
    "jupyterlab.labapp",
    "jupyterlab_server",
    "nbformat",
    # Imported while the server initialises (found by diffing sys.modules around ServerApp.initialize()):
    "jupyter_server.kernelspecs.handlers",
    "jupyter_server.nbconvert.handlers",
    "jupyter_server.view.handlers",
    "jupyter_server.services.api.handlers",
    "jupyter_server.services.config.handlers",
    "jupyter_server.services.contents.handlers",
    "jupyter_server.services.events.handlers",
    "jupyter_server.services.kernels.handlers",
    "jupyter_server.services.nbconvert.handlers",
    "jupyter_server.services.security.handlers",
    "jupyter_server.services.sessions.handlers",
    "jupyter_server.services.shutdown",
    "notebook_shim.nbserver",
    "IPython",
    "jinja2.ext",
    "codeop",
    "getopt",
    "httpx",
    "pangeohub.targets.local.kernelfork",
    # What the enabled extensions import as they load (same diff). GitPython (``git``, for jupyterlab-git) runs
    # ``git version`` when imported: here once, instead of a subprocess and 0.25 CPU-s in every server. httpcore
    # and h2 come with the HTTP client an extension makes.
    "git",
    "jupyterlab_git.handlers",
    "jupyterlab_git_core.ssh",
    "nbdime.webapp.nb_server_extension",
    "nbgitpuller.handlers",
    "httpcore",
    "h2.connection",
    "panel_server",
]


# What a Python kernel imports as it starts (found by listing sys.modules in a fresh kernel), for the kernel
# template: kernels are forked with these loaded and nothing of the server's (see kernelforker). None of them
# starts a thread. Not ipykernel.kernelapp itself: it reads JPY_PARENT_PID when it is imported.
KERNEL_PRELOAD = [
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "ipykernel.comm",
    "ipykernel.control",
    "ipykernel.heartbeat",
    "ipykernel.iostream",
    "ipykernel.parentpoller",
    "ipykernel.shellchannel",
    "IPython.core.completerlib",
    "IPython.core.debugger",
    "IPython.core.logger",
    "IPython.core.oinspect",
    "IPython.extensions.storemagic",
    "IPython.utils.wildcard",
    "tornado.platform.asyncio",
    "faulthandler",
    "runpy",
    "psutil",
    "pangeohub.targets.local.kernelforker",
    "pangeohub.targets.local.kernel_notice",
]


# What a Dask scheduler, nanny and worker import before they serve (``dask scheduler``/``dask worker`` with the
# gateway's preloads), for the Dask template: the gateway's schedulers and workers are forked with these loaded
# (see daskfork). Importing them starts no thread.
DASK_PRELOAD = [
    "distributed",
    "distributed.cli.dask_scheduler",
    "distributed.cli.dask_worker",
    "dask_gateway.scheduler_preload",
    "pangeohub.gateway.scheduler_preload",
    "pangeohub.targets.local.daskfork",
    # The scheduler's dashboard and HTTP routes (bokeh): most of a scheduler's start when not loaded.
    "distributed.dashboard.scheduler",
    "distributed.http.scheduler.prometheus",
    "distributed.http.scheduler.info",
    "distributed.http.scheduler.json",
    "distributed.http.health",
    "distributed.http.proxy",
    "distributed.http.statics",
    "distributed.http.worker.prometheus",
]


def enabled_extensions(prefix: str = sys.prefix) -> list[str]:
    """Server extensions switched on by the install (``etc/jupyter/jupyter_server_config.d/*.json``). Read in
    name order, a later file overriding an earlier one, as jupyter_server does: pangeohub.json switches off
    panel's extension (1.9 s of imports for every server, or in the template), and what it switched off is
    neither loaded by a server nor preloaded here."""
    switches: dict[str, bool] = {}
    for path in sorted(Path(prefix, "etc", "jupyter", "jupyter_server_config.d").glob("*.json")):
        try:
            switches.update(json.loads(path.read_text()).get("ServerApp", {}).get("jpserver_extensions", {}))
        except (OSError, ValueError, AttributeError):
            continue
    return [name for name, on in switches.items() if on]


def preload(names: list[str]) -> list[str]:
    """Import ``names``; returns what could not be imported (it then loads after the fork)."""
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # an optional extension that fails here fails the same way in the server
            missing.append(name)
    return missing


def drop_event_loop() -> None:
    """Close the asyncio loop some extension creates at import time. Its epoll fd and self-pipe would be shared
    by every child (each closes inherited fds anyway); a fresh policy lets each child make its own loop."""
    import asyncio
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            loop = None
    if loop is not None and not loop.is_running():
        loop.close()
    asyncio.set_event_loop_policy(None)


def undo_import_time_logging() -> None:
    """distributed (imported by dask_labextension) attaches its own stderr handler to tornado's loggers when it
    is imported. In a fresh server that happens after the server has set up logging, and wins; here it happens
    first, and every tornado line would be printed twice (the server's handler and distributed's). Tornado's
    loggers get their default shape back; the server then routes them through its own log, once."""
    import logging

    for name in ("tornado", "tornado.application"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


def _reap(signum, frame) -> None:
    """Children are user servers: collect their exit status so they do not linger as zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _listen(sock_path: Path) -> socket.socket:
    """Bind under a temporary name and rename: the socket's existence means "preloaded and accepting"."""
    sock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chown(sock_path.parent, 0, 0)
    sock_path.parent.chmod(0o700)
    staging = sock_path.with_name(sock_path.name + ".new")
    staging.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(str(staging))
    finally:
        os.umask(old_umask)
    listener.listen(128)
    os.replace(staging, sock_path)
    return listener


def serve(path: str) -> None:
    from pangeohub.targets.local import (
        forkchild,  # the children's code, imported before any user exists
        kernelforker,
    )
    from pangeohub.targets.local.forkclient import dask_socket
    from pangeohub.targets.local.installed import remember_distributions

    kernels = Path(path).with_name("kernels.sock") if kernelforker.supported() else None
    forkchild.prepare(kernel_template=str(kernels) if kernels else None)
    # The Dask template imports its modules itself, after the fork: side by side with the server's below.
    _start_template(dask_socket(Path(path)), forkchild.run_dask, "pangeohub-forkserver: dask template",
                    DASK_PRELOAD)
    missing = preload(KERNEL_PRELOAD)
    if kernels:
        _start_template(kernels, forkchild.run_forker, "pangeohub-forkserver: kernel template")
    remember_distributions()  # for the servers only: the templates above see people's own packages too
    missing += preload(PRELOAD + enabled_extensions())
    drop_event_loop()
    undo_import_time_logging()
    if missing:
        print(f"forkserver: not preloaded (will load per server): {', '.join(missing)}", file=sys.stderr)
    _accept_forever(_listen(Path(path)), forkchild.run, f"forkserver: ready on {path}")


def _start_template(sock_path: Path, handle, title: str, modules: list[str] = ()) -> None:
    """Fork a template: a root process with only some program's modules loaded (the kernel template: what a
    kernel imports, KERNEL_PRELOAD; the Dask template: DASK_PRELOAD), which forks one child per request and
    hands it to ``handle``. A template ends with the fork server; what it forked lives on. Its socket appears
    once its modules are imported: until then, callers start fresh processes."""
    sock_path.unlink(missing_ok=True)  # a previous run's: it would look ready before the imports are done
    staging = sock_path.with_name(sock_path.name + ".new")
    listener = _listen(staging)  # the name callers use appears once the imports are done
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
            if os.getppid() == parent:
                from pangeohub.targets.local.program import set_title

                set_title(title)
                missing = preload(list(modules))
                if missing:
                    print(f"forkserver: {title}: not preloaded: {', '.join(missing)}", file=sys.stderr)
                drop_event_loop()
                os.replace(staging, sock_path)
                code = _accept_forever(listener, handle, f"forkserver: {title} ready on {sock_path}")
        finally:
            os._exit(code)
    listener.close()


def _accept_forever(listener: socket.socket, handle, ready: str) -> int:
    # Objects alive now live for the whole process: keep the collector from touching (and so copying) them in
    # every child. This is most of the memory a forked server shares with its siblings.
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGCHLD, _reap)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"{ready} ({len(sys.modules)} modules)", file=sys.stderr, flush=True)
    while True:
        conn, _ = listener.accept()
        pid = os.fork()
        if pid == 0:
            # Never return into this loop: whatever happens, the child ends in os._exit.
            code = 1
            try:
                listener.close()
                code = handle(conn)
            finally:
                os._exit(code)
        conn.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -I -m pangeohub.targets.local.forkserver SOCKET")
    serve(sys.argv[1])
