"""Root's side of a pull: which repositories are for a person, and the puller started as that person.

Root never works in the home itself: the puller is a fresh process that has become the person (groups, gid, uid,
the platform's umask) before it runs, and changes into the home only then. Its environment is minimal, with git
told never to prompt (a repository that asks for a password fails at once instead of waiting for a terminal).
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import signal
import sys

# Beyond the sum of the per-repository timeouts the puller enforces itself: Python's start and the notices.
GRACE = 10.0


def for_person(config, groups: set[str]) -> list[dict]:
    """The repositories this person receives, as the puller reads them."""
    return [{"url": c.url, "branch": c.branch, "folder": c.folder, "timeout": c.timeout}
            for c in config.content if c.allows(groups)]


def _child_env(account: pwd.struct_passwd) -> dict[str, str]:
    return {
        "HOME": account.pw_dir, "USER": account.pw_name, "LOGNAME": account.pw_name,
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
        "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes",
    }


def _as_person(account: pwd.struct_passwd, umask: str) -> dict:
    return {"user": account.pw_uid, "group": account.pw_gid,
            "extra_groups": os.getgrouplist(account.pw_name, account.pw_gid), "umask": int(umask, 8),
            "env": _child_env(account), "start_new_session": True}


async def pull_as(account: pwd.struct_passwd, sources: list[dict], umask: str = "077") -> list[dict]:
    """Pull ``sources`` into the person's home as the person; one result per source, failures included."""
    if not sources:
        return []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-m", "pangeohub.content.puller", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, **_as_person(account, umask))
    limit = sum(s["timeout"] for s in sources) + GRACE
    try:
        out, err = await asyncio.wait_for(proc.communicate(json.dumps({"sources": sources}).encode()), limit)
    except TimeoutError:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await proc.wait()
        return [_failed(s, f"the pull did not end within {limit:g}s") for s in sources]
    try:
        return json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        why = " / ".join(err.decode(errors="replace").strip().splitlines()[-3:]) or f"exit {proc.returncode}"
        return [_failed(s, f"the puller failed: {why}") for s in sources]


def pull_now(account: pwd.struct_passwd, sources: list[dict], umask: str = "077") -> list[dict]:
    """``pull_as`` for a caller with no event loop."""
    return asyncio.run(pull_as(account, sources, umask))


def _failed(source: dict, why: str) -> dict:
    return {"folder": source["folder"], "status": "failed", "detail": why, "beside": []}


def describe(result: dict) -> str:
    words = {"cloned": "cloned", "updated": "updated", "current": "already current", "failed": "FAILED"}
    text = f"{result['folder']}: {words.get(result['status'], result['status'])}"
    if result.get("detail"):
        text += f" ({result['detail']})"
    if result.get("beside"):
        text += f"; upstream's version kept beside the person's edit: {', '.join(result['beside'])}"
    return text

