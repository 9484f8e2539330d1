"""nbgitpuller's puller, keeping upstream's version of a file beside the person's when both changed it.

Upstream's merge (``git merge -Xours``) keeps the person's side of every conflicting hunk and silently drops
upstream's: the person would never see the correction the teacher made to the lines they had edited. This
subclass lists the files git reports as conflicting before that merge, lets upstream's merge run unchanged, then
writes upstream's version of each such file beside the person's as ``NAME.upstream-<commit>.EXT``. The person's
file is never touched by it; a copy that is already there is left alone.
"""

from __future__ import annotations

import os
import subprocess

from nbgitpuller.pull import GitPuller


class KeepingPuller(GitPuller):
    def __init__(self, *args, **kwargs):
        self.beside: list[str] = []  # upstream copies written by the last pull, relative to the folder
        super().__init__(*args, **kwargs)

    def merge(self):
        upstream = f"origin/{self.branch_name}"
        conflicting = self._conflicting(upstream)
        yield from super().merge()
        commit = self._git("rev-parse", "--short", upstream).strip()
        for path in conflicting:
            name = self._copy_beside(upstream, commit, path)
            if name:
                self.beside.append(name)
                yield f"Kept your {path}; upstream's version is beside it as {name}"

    def _git(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(["git", *args], cwd=self.repo_dir, capture_output=True, text=True, check=check)
        return proc.stdout

    def _conflicting(self, upstream: str) -> list[str]:
        # git >= 2.38 merges in memory: exit 1 and the conflicting paths after the tree's id, nothing written.
        proc = subprocess.run(["git", "merge-tree", "--write-tree", "--name-only", "--no-messages", "HEAD", upstream],
                              cwd=self.repo_dir, capture_output=True, text=True)
        if proc.returncode != 1:
            return []
        return sorted({line for line in proc.stdout.splitlines()[1:] if line})

    def _copy_beside(self, upstream: str, commit: str, path: str) -> str | None:
        blob = subprocess.run(["git", "show", f"{upstream}:{path}"], cwd=self.repo_dir, capture_output=True)
        if blob.returncode != 0:
            return None  # upstream deleted it: the person's file stays, there is nothing to put beside it
        head, tail = os.path.split(path)
        stem, ext = os.path.splitext(tail)
        name = os.path.join(head, f"{stem}.upstream-{commit}{ext}")
        try:
            fd = os.open(os.path.join(self.repo_dir, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o666)
        except FileExistsError:
            return name
        with os.fdopen(fd, "wb") as out:
            out.write(blob.stdout)
        return name
