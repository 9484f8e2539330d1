"""Where an environment's versions live, and reading them back.

``install_dir/envs/`` holds one folder per environment and ``.uv-cache``, the one cache every build shares: on the
same filesystem, uv hard-links files from it, so a package used by ten environments is stored once.

``envs/NAME/`` holds the versions ``1``, ``2``, ... (never changed once built), ``current`` (a relative link to one
of them), ``jupyter/kernels/NAME/kernel.json`` (the kernel, which runs ``current``), ``.lock`` (one build at a
time), ``building.json`` (a build runs) and ``failed.json`` + ``failed.log`` (the last build failed).
A version is complete once its ``build.json`` exists: it is written last, so a build that died half-way is
recognisable and never chosen.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

BUILD_INFO = "build.json"
# In a ``base: pangeo`` version's site-packages: adds the runtime's site-packages (see build.py). Its presence is
# what marks a version as a layer over the default stack.
BASE_PTH = "_pangeohub_base.pth"
LOCK_FILE = "requirements.lock"
BUILD_LOG = "build.log"


def envs_root(install_dir: Path) -> Path:
    return install_dir / "envs"


def stack_layer(install_dir: Path, python: str) -> Path | None:
    """The site-packages of the administrator's environment whose Python is ``python`` (``envs/NAME/current/bin/
    python`` or a version's), resolved to the version it names now, if that version extends the default stack;
    None for anything else (a ``base: none`` environment, a personal one, another Python). Such a version holds
    only what the runtime lacks, at versions constrained to the runtime's: a process of the runtime with this
    folder added is the process the environment's own Python would start."""
    path = Path(python)
    if path.name not in ("python", "python3") or path.parent.name != "bin":
        return None
    version = path.parent.parent.resolve()
    root = envs_root(install_dir).resolve()
    if version.parent.parent != root or not version.name.isdigit() or not (version / BUILD_INFO).exists():
        return None
    for site in version.glob("lib/python3*/site-packages"):
        if (site / BASE_PTH).exists():
            return site
    return None


def uv_cache(install_dir: Path) -> Path:
    return envs_root(install_dir) / ".uv-cache"


@dataclass(frozen=True)
class EnvDir:
    """The folder of one named environment."""

    path: Path

    @classmethod
    def of(cls, install_dir: Path, name: str) -> "EnvDir":
        return cls(envs_root(install_dir) / name)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def current_link(self) -> Path:
        return self.path / "current"

    @property
    def kernels_parent(self) -> Path:
        """A Jupyter data dir (JUPYTER_PATH entry) holding only this environment's kernel."""
        return self.path / "jupyter"

    @property
    def building_file(self) -> Path:
        return self.path / "building.json"

    @property
    def failed_file(self) -> Path:
        return self.path / "failed.json"

    @property
    def failed_log(self) -> Path:
        return self.path / "failed.log"

    def version_dir(self, version: int) -> Path:
        return self.path / str(version)

    def versions(self) -> list[int]:
        """Complete versions, oldest first."""
        if not self.path.is_dir():
            return []
        found = [int(p.name) for p in self.path.iterdir() if p.name.isdigit() and (p / BUILD_INFO).exists()]
        return sorted(found)

    def next_version(self) -> int:
        # Half-built folders count too: a number is never reused, so a lock or log names one build only.
        taken = [int(p.name) for p in self.path.iterdir() if p.name.isdigit()] if self.path.is_dir() else []
        return max(taken, default=0) + 1

    def current(self) -> int | None:
        try:
            target = os.readlink(self.current_link)
        except OSError:
            return None
        return int(target) if target.isdigit() and target and (self.path / target / BUILD_INFO).exists() else None

    def info(self, version: int) -> dict:
        return json.loads((self.version_dir(version) / BUILD_INFO).read_text())

    def python(self, version: int | None = None) -> Path:
        base = self.current_link if version is None else self.version_dir(version)
        return base / "bin" / "python"

    def set_current(self, version: int) -> None:
        """Point ``current`` at ``version`` atomically: a kernel starting now gets the old one or the new one."""
        temporary = self.path / ".current.new"
        temporary.unlink(missing_ok=True)
        os.symlink(str(version), temporary)
        os.replace(temporary, self.current_link)

    def building(self) -> dict | None:
        """The running build's record, or None (a record left by a build that died is ignored)."""
        try:
            record = json.loads(self.building_file.read_text())
        except (OSError, ValueError):
            return None
        try:
            os.kill(record["pid"], 0)
        except (OSError, KeyError, TypeError):
            return None
        return record

    def failure(self) -> dict | None:
        try:
            return json.loads(self.failed_file.read_text())
        except (OSError, ValueError):
            return None


def write_json(path: Path, value: dict) -> None:
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(partial, path)


def disk_usage(paths: list[Path]) -> dict[Path, int]:
    """Bytes of each tree, a file hard-linked into several counted once, for the first tree that holds it (the
    shared cache's links are what makes a second environment nearly free)."""
    seen: set[tuple[int, int]] = set()
    sizes: dict[Path, int] = {}
    for root in paths:
        total = 0
        for folder, _dirs, files in os.walk(root):
            for name in files:
                try:
                    st = os.lstat(os.path.join(folder, name))
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key in seen:
                    continue
                seen.add(key)
                total += st.st_blocks * 512
        sizes[root] = total
    return sizes


def summary(config) -> list[dict]:
    """One line of `pangeohub status` per environment: built, building in the background, failed, or missing."""
    rows = []
    for spec in config.environments:
        envdir = EnvDir.of(config.install_dir, spec.name)
        building, failure, current = envdir.building(), envdir.failure(), envdir.current()
        state = ("building" if building else "failed" if failure and current is None
                 else "ready" if current is not None else "missing")
        rows.append({"name": spec.name, "state": state, "current": current,
                     "failed": failure["reason"] if failure else None})
    return rows
