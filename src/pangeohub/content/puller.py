"""The pull itself, run as the person in their home: ``python -I -m pangeohub.content.puller``.

Reads ``{"sources": [{"url", "branch", "folder", "timeout"}, ...]}`` on stdin and prints one JSON list of results
(``folder``, ``status`` cloned | updated | current | failed, ``detail``, ``beside``). Each repository is pulled in
a process of its own session (``--one``), so that a repository that hangs is ended with every git process under
it once its timeout passes, and the next one still gets its turn.

A folder that could not be brought up to date gets a notice beside it, ``FOLDER.NOT-UPDATED.txt``, which the
person sees in JupyterLab's file browser; the next pull that works removes it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

NOTICE_SUFFIX = ".NOT-UPDATED.txt"


def notice_path(folder: str) -> str:
    return folder.rstrip("/") + NOTICE_SUFFIX


def _git(cwd: str, *args: str) -> str | None:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


def pull_one(url: str, branch: str, folder: str) -> dict:
    """Clone or merge one repository into ``folder`` (relative to the current directory, the home)."""
    from nbgitpuller.errors import BranchExistError, BranchResolveError

    from pangeohub.content.merge import KeepingPuller

    before = None
    existed = os.path.lexists(folder)
    if existed:
        # git would search upwards from a folder that is not a clone: a home under git would receive the merge.
        if os.path.islink(folder) or not os.path.isdir(os.path.join(folder, ".git")):
            return _failed(folder, f"'{folder}' exists and is not a clone of {url}; rename or remove it to receive "
                                   "the material")
        origin = _git(folder, "config", "--get", "remote.origin.url")
        if origin != url:
            return _failed(folder, f"'{folder}' is a clone of {origin or 'another repository'}, not of {url}; rename "
                                   "or remove it to receive the material")
        before = _git(folder, "rev-parse", f"origin/{branch}")
    else:
        parent = os.path.dirname(folder)
        if parent:
            os.makedirs(parent, exist_ok=True)
    output: list[str] = []
    try:
        puller = KeepingPuller(url, folder, branch=branch)
        for line in puller.pull():
            output.append(line.rstrip())
    except BranchExistError:
        return _failed(folder, f"{url} has no branch '{branch}' (or cannot be reached)")
    except BranchResolveError:
        return _failed(folder, f"cannot find the default branch of {url}")
    except subprocess.CalledProcessError as exc:
        said = (exc.stderr or "").strip() if isinstance(exc.stderr, str) else ""
        said = said or "\n".join(line for line in output[-6:] if line and not line.startswith("$"))
        return _failed(folder, f"git failed for {url}: {_last_lines(said) or exc}")
    except Exception as exc:  # noqa: BLE001 (nbgitpuller raises plain Exception for a held index.lock)
        return _failed(folder, f"{url}: {exc}")
    after = _git(folder, "rev-parse", f"origin/{branch}")
    status = "cloned" if not existed else "current" if before == after else "updated"
    return {"folder": folder, "status": status, "detail": "", "beside": puller.beside}


def _failed(folder: str, why: str) -> dict:
    return {"folder": folder, "status": "failed", "detail": why, "beside": []}


def _last_lines(text: str, count: int = 3) -> str:
    """git's own reason: its 'fatal:' lines when it gave some, else the last lines it printed."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    fatal = [line.removeprefix("fatal: ") for line in lines if line.startswith(("fatal:", "error:"))]
    return " / ".join(fatal[:2] or lines[-count:])


def run_one(source: dict) -> dict:
    """``pull_one`` in a process of its own session, ended (with its git processes) after the timeout."""
    proc = subprocess.Popen([sys.executable, "-I", "-m", "pangeohub.content.puller", "--one"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(json.dumps(source), timeout=source["timeout"])
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return _failed(source["folder"], f"{source['url']} did not answer within {source['timeout']:g}s (the "
                                         "content timeout); it is tried again at the next start")
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return _failed(source["folder"], f"the pull of {source['url']} ended without a result: "
                                         f"{_last_lines(err) or 'exit ' + str(proc.returncode)}")


def write_notice(result: dict, url: str) -> None:
    path = notice_path(result["folder"])
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    text = (f"The workshop material in '{result['folder']}' could not be brought up to date ({when}).\n\n"
            f"Why: {result['detail']}\n\n"
            f"Your files are untouched. The platform tries again each time your server starts; you can also\n"
            f"run `gitpuller {url} <branch> {result['folder']}` in a terminal from your home, or ask your\n"
            f"administrator. This notice goes away once the material is up to date.\n")
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def clear_notice(folder: str) -> None:
    try:
        os.unlink(notice_path(folder))
    except FileNotFoundError:
        pass


def pull_all(sources: list[dict]) -> list[dict]:
    results = []
    for source in sources:
        result = run_one(source)
        if result["status"] == "failed":
            write_notice(result, source["url"])
        else:
            clear_notice(source["folder"])
        results.append(result)
    return results


def trust_local_repositories(sources: list[dict]) -> str | None:
    """A git config naming the admin's ``file://`` repositories safe. git refuses to read a repository another
    account owns (``safe.directory``, honoured only from the global or system config): a repository the admin
    keeps on this machine is root's, and every person must read it. Only the paths the config names are
    trusted, and only for the puller's own git processes. Returns the file to remove afterwards."""
    paths = [urllib.parse.unquote(urllib.parse.urlparse(s["url"]).path) for s in sources
             if s["url"].startswith("file://")]
    if not paths:
        return None
    fd, name = tempfile.mkstemp(prefix="pangeohub-gitconfig-")
    with os.fdopen(fd, "w") as out:
        out.write("[safe]\n" + "".join(f"\tdirectory = {p}\n" for p in paths))
    os.environ["GIT_CONFIG_GLOBAL"] = name
    return name


def main() -> None:
    os.chdir(os.environ["HOME"])  # as the person already: a link they made can only lead where they may go
    request = json.load(sys.stdin)
    if sys.argv[1:] == ["--one"]:
        print(json.dumps(pull_one(request["url"], request["branch"], request["folder"])))
        return
    config = trust_local_repositories(request["sources"])
    try:
        print(json.dumps(pull_all(request["sources"])))
    finally:
        if config:
            os.unlink(config)


if __name__ == "__main__":
    main()
