"""Building one version of a named environment with uv: resolve, install, record; or fail and change nothing.

Why ``base: pangeo`` is a site layer and not a copy: the new version's ``site-packages`` gets a ``.pth`` file that
runs ``site.addsitedir(<runtime site-packages>)``, which is what ``--system-site-packages`` does for a system
Python, but for our runtime venv (a venv cannot name another venv as its base). The resolver is constrained to
the versions the runtime has, and only what the runtime lacks is installed: the environment stays small (a few
MB instead of the whole stack), the kernel's xarray/dask are exactly the hub's (so a Dask client in it matches
the scheduler), and the runtime's own ``.pth`` files still apply. A copy of the stack per environment would
cost ~1 GB and minutes each, and drift from the runtime at the next upgrade.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sysconfig
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from pangeohub.envs.layout import (
    BASE_PTH,
    BUILD_INFO,
    BUILD_LOG,
    LOCK_FILE,
    EnvDir,
    envs_root,
    uv_cache,
    write_json,
)
from pangeohub.errors import PangeoError

Say = Callable[[str], None]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(lock_text: str) -> dict[str, str]:
    """{normalised name: 'name==version'} of a lock or freeze (comments, options and direct URLs skipped)."""
    found = {}
    for line in lock_text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        if match:
            found[_normal(match[1])] = f"{match[1]}=={match[2]}"
    return found


class Builder:
    """Builds the environments of one runtime; ``say`` shows progress (one line per step)."""

    def __init__(self, rt, say: Say = print):
        self.rt = rt
        self.say = say
        self.install_dir = rt.config.install_dir
        self.uv = str(rt.python_bin("uv"))
        # The interpreter the runtime venv was made from: a new version runs the same Python, so that the
        # runtime's compiled packages load in a `base: pangeo` environment.
        self.base_python = os.path.realpath(rt.python_bin("python"))

    def uv_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        env.update(UV_CACHE_DIR=str(uv_cache(self.install_dir)), UV_LINK_MODE="hardlink",
                   UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", NO_COLOR="1",
                   UV_SYSTEM_CERTS="1")  # the machine's certificate store, as pip uses it (a site's CA is in it)
        return env

    def build(self, spec) -> int:
        """Build a new version of ``spec`` (a config ``Environment``) and make it current; returns its number."""
        envdir = EnvDir.of(self.install_dir, spec.name)
        envs_root(self.install_dir).mkdir(parents=True, exist_ok=True)
        envdir.path.mkdir(exist_ok=True)
        with _exclusive(envdir):
            version = envdir.next_version()
            write_json(envdir.building_file, {"pid": os.getpid(), "version": version, "started": time.time()})
            try:
                return self._build(spec, envdir, version)
            finally:
                envdir.building_file.unlink(missing_ok=True)

    def _build(self, spec, envdir: EnvDir, version: int) -> int:
        target = envdir.version_dir(version)
        started = time.time()
        log: list[str] = []
        with tempfile.TemporaryDirectory(prefix=f"env-{spec.name}-") as work:
            work = Path(work)
            try:
                lock = self._resolve(spec, work, log)
                self._install(spec, target, lock, work, log)
            except PangeoError as exc:
                shutil.rmtree(target, ignore_errors=True)  # a half-made version must never be chosen
                envdir.failed_log.write_text("\n".join(log) + "\n")
                write_json(envdir.failed_file, {"at": time.time(), "version": version, "reason": exc.what})
                previous = envdir.current()
                exc.what = (f"building environment '{spec.name}' failed: {exc.what}\n  "
                            + (f"version {previous} still serves" if previous else "it has no version yet")
                            + f" (full log: {envdir.failed_log})")
                raise
            (target / LOCK_FILE).write_text(lock)
            (target / BUILD_LOG).write_text("\n".join(log) + "\n")
            write_json(target / BUILD_INFO, {
                "version": version, "built_at": started, "seconds": round(time.time() - started, 1),
                "base": spec.base, "packages": spec.packages,
                "requirements": str(spec.requirements) if spec.requirements else None,
                "python": self.base_python,
            })
        envdir.set_current(version)
        envdir.failed_file.unlink(missing_ok=True)
        envdir.failed_log.unlink(missing_ok=True)
        from pangeohub.envs.kernels import write_kernelspec

        write_kernelspec(envdir)
        return version

    def _resolve(self, spec, work: Path, log: list[str]) -> str:
        wanted = list(spec.packages)
        if spec.requirements is not None:
            try:
                wanted += [line for line in spec.requirements.read_text().splitlines() if line.strip()]
            except OSError as exc:
                raise PangeoError(f"cannot read the requirements file {spec.requirements} ({exc.strerror})",
                                  "fix the path in environments[].requirements") from None
        if spec.base == "none":
            wanted.append("ipykernel>=7")  # what makes it a kernel; 7 speaks the encrypted connections we use
        (work / "requirements.in").write_text("\n".join(wanted) + "\n")
        argv = [self.uv, "pip", "compile", str(work / "requirements.in"), "--python", self.base_python,
                "--output-file", str(work / "lock.txt"), "--no-header"]
        if spec.base == "pangeo":
            (work / "runtime.txt").write_text("\n".join(self.runtime_pins().values()) + "\n")
            argv += ["--constraint", str(work / "runtime.txt")]
        self.say(f"  resolving {len(wanted)} requirement(s) ...")
        self._uv(argv, log, "resolving")
        return (work / "lock.txt").read_text()

    def runtime_pins(self) -> dict[str, str]:
        proc = subprocess.run([self.uv, "pip", "freeze", "--python", str(self.rt.python_bin("python"))],
                              capture_output=True, text=True, env=self.uv_env())
        return pinned(proc.stdout)

    def _install(self, spec, target: Path, lock: str, work: Path, log: list[str]) -> None:
        self._uv([self.uv, "venv", "--quiet", "--python", self.base_python, str(target)], log, "creating the venv")
        python = target / "bin" / "python"
        if spec.base == "pangeo":
            site = _site_packages(target)
            runtime_site = sysconfig.get_path("purelib")  # the CLI runs in the runtime venv
            (site / BASE_PTH).write_text(f"import site; site.addsitedir({runtime_site!r})\n")
            have = self.runtime_pins()
            extra = [line for key, line in pinned(lock).items() if have.get(key) != line]
            (work / "install.txt").write_text("\n".join(extra) + "\n")
            self.say(f"  installing {len(extra)} package(s) the default stack lacks ...")
            if extra:
                self._uv([self.uv, "pip", "install", "--no-deps", "--python", str(python), "-r",
                          str(work / "install.txt")], log, "installing")
        else:
            (work / "lock.txt").write_text(lock)
            self.say(f"  installing {len(pinned(lock))} package(s) ...")
            self._uv([self.uv, "pip", "sync", "--python", str(python), str(work / "lock.txt")], log, "installing")
        proc = subprocess.run([str(python), "-c", "import ipykernel"], capture_output=True, text=True)
        if proc.returncode:
            log.append(proc.stderr)
            raise PangeoError(f"the new environment cannot start a kernel: {proc.stderr.strip().splitlines()[-1]}",
                              "a pin in `packages` probably replaced part of the stack; loosen it")

    def _uv(self, argv: list[str], log: list[str], doing: str) -> None:
        started = time.monotonic()
        log.append("$ " + " ".join(argv))
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.uv_env(), stdin=subprocess.DEVNULL)
        log.extend([proc.stdout, proc.stderr])
        if proc.returncode:
            raise PangeoError(f"{doing} failed: {_uv_reason(proc.stderr)}",
                              "correct the environment's packages (names and pins) in the config, or check that "
                              "the package index can be reached, then build again")
        self.say(f"    {doing}: done ({time.monotonic() - started:.1f}s)")


def _uv_reason(stderr: str) -> str:
    """uv's explanation without its box drawing, short enough for a terminal."""
    lines = [re.sub(r"^[\s×╰─▶│]+", "", line).rstrip() for line in stderr.splitlines()]
    text = " ".join(line for line in lines if line and not line.startswith(("hint:", "Resolved", "Using")))
    return text[:1200] or "uv gave no reason (see the log)"


def _site_packages(venv: Path) -> Path:
    found = list(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise PangeoError(f"uv made no site-packages in {venv}")
    return found[0]


@contextmanager
def _exclusive(envdir: EnvDir) -> Iterator[None]:
    with open(envdir.path / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            running = envdir.building() or {}
            raise PangeoError(f"environment '{envdir.name}' is being built already (pid {running.get('pid', '?')})",
                              "wait for that build to end (`pangeohub env list` shows it)") from None
        yield
