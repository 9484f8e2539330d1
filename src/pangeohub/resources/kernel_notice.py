"""IPython extension loaded in every kernel (etc/ipython/ipython_kernel_config.json): say why things failed.

- A kernel stopped by the memory limit cannot say so itself (the kernel kills it outright). The next cell
  the person runs, in any kernel of the same server, reports it: the cgroup's OOM-kill counter
  (``$PANGEO_MEMORY_EVENTS``) went up since last seen.
- "No space left on device" in the home gets a note that the home quota is full and what to do.
Outside pangeohub (no PANGEO_* variables) it does nothing.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path


def _oom_kills(path: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


class MemoryNotice:
    def __init__(self, events: str):
        self.events = events
        self.spawn = os.environ.get("PANGEO_SPAWN_ID", "")
        self.state = Path.home() / ".local" / "state" / "pangeohub" / "oom-kills-seen"

    def _seen(self) -> int:
        try:
            spawn, count = self.state.read_text().split()
            if spawn == self.spawn:
                return int(count)
        except (OSError, ValueError):
            pass
        return int(os.environ.get("PANGEO_OOM_BASELINE", "0") or 0)

    def _remember(self, count: int) -> None:
        try:
            self.state.parent.mkdir(parents=True, exist_ok=True)
            self.state.write_text(f"{self.spawn} {count}\n")
        except OSError:
            pass  # a full home must not break the kernel

    def __call__(self, *args) -> None:
        count = _oom_kills(self.events)
        seen = self._seen()
        if count > seen:
            self._remember(count)
            limit = os.environ.get("PANGEO_MEMORY_LIMIT", "?")
            profile = os.environ.get("PANGEO_PROFILE", "?")
            killed = count - seen
            what = f"{killed} processes of your server were" if killed > 1 else "1 process of your server was"
            print(
                f"pangeohub: {what} stopped (such as a previous kernel) because your server reached its memory "
                f"limit of {limit} (profile '{profile}'). Use less memory at once, or restart your server with a "
                "larger profile.",
                file=sys.stderr,
            )


def _disk_full(shell, etype, value, tb, tb_offset=None):
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    if getattr(value, "errno", None) == errno.ENOSPC:
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
    events = os.environ.get("PANGEO_MEMORY_EVENTS")
    if events:
        notice = MemoryNotice(events)
        shell.events.register("pre_run_cell", notice)
    if os.environ.get("PANGEO_PROFILE"):
        shell.set_custom_exc((OSError,), _disk_full)
