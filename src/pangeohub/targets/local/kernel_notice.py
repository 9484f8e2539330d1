"""IPython extension loaded in every kernel (etc/ipython/ipython_kernel_config.json): say why things failed.

- A kernel stopped by the memory limit cannot say so itself (the kernel kills it outright). The next cell
  the person runs, in any kernel of the same server, reports it: the cgroup's OOM-kill counter
  (``$PANGEO_MEMORY_EVENTS``) went up since last seen.
- "No space left on device" in the home gets a note that the home quota is full and what to do.
- A process or thread refused at the server's process limit (the pids cgroup, ``$PANGEO_PIDS_EVENTS``) is
  reported the same way: by the failing call itself (EAGAIN from fork or thread start), and by the next cell
  when something else (a subprocess, a library's thread pool) ran into it.
Outside pangeohub (no PANGEO_* variables) it does nothing.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path


def _counter(path: str, name: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


class CounterNotice:
    """Tells the person, once per rise, that a kernel counter of their cgroup went up since last seen.

    The count seen is kept per server start in the home, so that every kernel of the server reports a rise
    once, not each kernel again."""

    counter = ""
    state_name = ""
    baseline_env = ""

    def __init__(self, events: str):
        self.events = events
        self.spawn = os.environ.get("PANGEO_SPAWN_ID", "")
        self.state = Path.home() / ".local" / "state" / "pangeohub" / self.state_name

    def _seen(self) -> int:
        try:
            spawn, count = self.state.read_text().split()
            if spawn == self.spawn:
                return int(count)
        except (OSError, ValueError):
            pass
        return int(os.environ.get(self.baseline_env, "0") or 0)

    def _remember(self, count: int) -> None:
        try:
            self.state.parent.mkdir(parents=True, exist_ok=True)
            self.state.write_text(f"{self.spawn} {count}\n")
        except OSError:
            pass  # a full home must not break the kernel

    def __call__(self, *args) -> None:
        count = _counter(self.events, self.counter)
        seen = self._seen()
        if count > seen:
            self._remember(count)
            self.tell(count - seen)

    def tell(self, times: int) -> None:
        raise NotImplementedError


class MemoryNotice(CounterNotice):
    counter, state_name, baseline_env = "oom_kill", "oom-kills-seen", "PANGEO_OOM_BASELINE"

    def tell(self, killed: int) -> None:
        limit = os.environ.get("PANGEO_MEMORY_LIMIT", "?")
        profile = os.environ.get("PANGEO_PROFILE", "?")
        what = f"{killed} processes of your server were" if killed > 1 else "1 process of your server was"
        print(
            f"pangeohub: {what} stopped (such as a previous kernel) because your server reached its memory "
            f"limit of {limit} (profile '{profile}'). Use less memory at once, or restart your server with a "
            "larger profile.",
            file=sys.stderr,
        )


class ProcessNotice(CounterNotice):
    counter, state_name, baseline_env = "max", "process-limit-seen", "PANGEO_PIDS_BASELINE"

    def tell(self, refused: int) -> None:
        print(process_limit_message(refused), file=sys.stderr)


def process_limit_message(refused: int = 0) -> str:
    limit = os.environ.get("PANGEO_PROCESS_LIMIT", "?")
    profile = os.environ.get("PANGEO_PROFILE", "?")
    times = f" ({refused} times)" if refused > 1 else ""
    return (f"pangeohub: a new process or thread was refused{times} because your server reached its limit of "
            f"{limit} processes and threads (profile '{profile}'). Stop processes you no longer need "
            "(`ps -u $USER`, `kill PID`), use fewer threads or workers, or restart your server with a larger "
            "profile.")


def _os_error(shell, etype, value, tb, tb_offset=None):
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    code = getattr(value, "errno", None)
    if code == errno.EAGAIN and os.environ.get("PANGEO_PIDS_EVENTS"):
        notice = ProcessNotice(os.environ["PANGEO_PIDS_EVENTS"])
        count = _counter(notice.events, notice.counter)
        if count > notice._seen():
            notice._remember(count)  # said here: the next cell need not say it again
            print(process_limit_message(), file=sys.stderr)
    if code == errno.ENOSPC:
        quota = os.environ.get("PANGEO_HOME_QUOTA")
        where = f"your home quota of {quota}" if quota and _home_full() else "the disk you wrote to"
        print(
            f"pangeohub: no space left: {where} is full, so this write failed (files already saved are intact). "
            "Delete files you no longer need (see `du -sh ~/* ~/.[!.]*`), write large results to object storage "
            "or scratch, or ask an administrator for a larger quota.",
            file=sys.stderr,
        )


def _home_full() -> bool:
    try:
        st = os.statvfs(Path.home())
        return st.f_bavail * st.f_frsize < 4 * 1024**2
    except OSError:
        return False


def load_ipython_extension(shell) -> None:
    for variable, notice in (("PANGEO_MEMORY_EVENTS", MemoryNotice), ("PANGEO_PIDS_EVENTS", ProcessNotice)):
        if os.environ.get(variable):
            shell.events.register("pre_run_cell", notice(os.environ[variable]))
    if os.environ.get("PANGEO_PROFILE"):
        shell.set_custom_exc((OSError,), _os_error)
