"""``pangeohub-env create NAME PKG... | list | remove NAME``: a person's own environments, from their terminal.

Each is a venv in ``~/.local/share/pangeohub/envs/NAME`` layered over the default stack like an admin's
``base: pangeo`` environment (pangeohub.envs.build says why), built with the runtime's uv and the person's own uv
cache in their home, so everything it takes counts against their quota. Its kernel, ``Python (NAME)``, is in their
own Jupyter data dir: nobody else sees it. Runs as the person, never as root.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from pangeohub.config.environments import ENV_NAME_RE, RESERVED_NAMES
from pangeohub.envs.build import _site_packages, _uv_reason, pinned
from pangeohub.envs.layout import BASE_PTH
from pangeohub.envs.dask import CLIENT_VARIABLE
from pangeohub.envs.kernels import ENV_VARIABLE
from pangeohub.errors import PangeoError


def envs_home() -> Path:
    return Path.home() / ".local" / "share" / "pangeohub" / "envs"


def kernel_dir(name: str) -> Path:
    return Path.home() / ".local" / "share" / "jupyter" / "kernels" / f"personal-{name}"


def _uv(*args: str) -> subprocess.CompletedProcess:
    uv = Path(sys.executable).parent / "uv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONHOME"))}
    # The machine's certificate store, as pip and the rest of the system use it (a site's own CA is in it).
    env.update(UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", NO_COLOR="1", UV_LINK_MODE="hardlink",
               UV_SYSTEM_CERTS="1")
    return subprocess.run([str(uv), *args], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)


SPACE_FIX = ("free space in your home (`du -sh ~/* ~/.cache`; `uv cache clean` empties the package cache) or ask "
             "for a bigger quota")


class _NoSpace(Exception):
    """The home filled up while uv wrote into it: reported once the attempt's files are gone again."""

    def __init__(self, doing: str, reason: str):
        super().__init__(reason)
        self.doing, self.reason = doing, reason


def _check(proc: subprocess.CompletedProcess, doing: str) -> None:
    if proc.returncode:
        reason = _uv_reason(proc.stderr)
        if "quota" in reason.lower() or "no space" in reason.lower():
            raise _NoSpace(doing, reason.rsplit("cause: ", 1)[-1])
        raise PangeoError(f"{doing} failed: {reason}", "check the package names and versions, then try again")


def _no_space(name: str, why: str) -> PangeoError:
    free = shutil.disk_usage(Path.home()).free
    quota = os.environ.get("PANGEO_HOME_QUOTA")  # set in every server of a home with a quota
    room = f"your home quota of {quota}" if quota else "your home"
    return PangeoError(f"environment {name!r} does not fit in {room}: {why}; nothing of it was kept, "
                       f"{free / 2**20:.0f}M is free", SPACE_FIX)


def create(name: str, packages: list[str]) -> Path:
    if not ENV_NAME_RE.match(name) or name in RESERVED_NAMES:
        raise PangeoError(f"{name!r} is not a valid environment name",
                          "use lowercase letters, digits, '-' or '_', starting with a letter, at most 32 characters")
    for spec in packages:
        if spec.startswith("-"):
            raise PangeoError(f"{spec!r} is not a package",
                              "give package names, e.g. pangeohub-env create mine tabulate")
    target = envs_home() / name
    if target.exists():
        raise PangeoError(f"you have an environment {name!r} already ({target})",
                          f"choose another name, or remove it first: pangeohub-env remove {name}")
    base_python = os.path.realpath(sys.executable)
    extra: list[str] = []
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"env-{name}-") as work:
            work = Path(work)
            have = pinned(_uv("pip", "freeze", "--python", sys.executable).stdout)
            (work / "in.txt").write_text("\n".join(packages) + "\n")
            (work / "runtime.txt").write_text("\n".join(have.values()) + "\n")
            print(f"resolving {len(packages)} package(s) against the default stack ...", flush=True)
            _check(_uv("pip", "compile", str(work / "in.txt"), "--constraint", str(work / "runtime.txt"),
                       "--python", base_python, "--no-header", "--output-file", str(work / "lock.txt")), "resolving")
            extra = [line for key, line in pinned((work / "lock.txt").read_text()).items() if have.get(key) != line]
            _check(_uv("venv", "--quiet", "--python", base_python, str(target)), "creating the venv")
            site = _site_packages(target)
            (site / BASE_PTH).write_text(f"import site; site.addsitedir({sysconfig.get_path('purelib')!r})\n")
            (work / "install.txt").write_text("\n".join(extra) + "\n")
            print(f"installing {len(extra)} package(s) ...", flush=True)
            if extra:
                _check(_uv("pip", "install", "--no-deps", "--python", str(target / "bin" / "python"), "-r",
                           str(work / "install.txt")), "installing")
            shutil.copy(work / "lock.txt", target / "requirements.lock")
        _write_kernel(name, target)
    except BaseException as exc:
        shutil.rmtree(target, ignore_errors=True)  # nothing half-made stays in the home
        shutil.rmtree(kernel_dir(name), ignore_errors=True)
        full = isinstance(exc, _NoSpace) or (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT))
        if full and extra:
            # What this attempt put in the package cache would keep the quota full: the cache is in the home.
            # An environment that links the same files keeps its own links.
            _uv("cache", "clean", *(line.split("==", 1)[0] for line in extra))
        if isinstance(exc, _NoSpace):
            raise _no_space(name, f"{exc.doing}: {exc.reason}") from None
        if full:
            raise _no_space(name, f"{exc.strerror} ({exc.filename})") from None
        if isinstance(exc, OSError):
            raise PangeoError(f"creating {name!r} failed: {exc.strerror} ({exc.filename})", SPACE_FIX) from None
        raise
    return target


def _write_kernel(name: str, target: Path) -> None:
    folder = kernel_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"argv": [str(target / "bin" / "python"), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Python ({name})", "language": "python",
            # Dask clusters of a personal environment run the default stack: the gateway runs only environments
            # an administrator built (the empty option overrides one the server may have set).
            "env": {ENV_VARIABLE: f"personal:{name}", CLIENT_VARIABLE: ""},
            "metadata": {"pangeohub": {"personal": True}, "supported_encryption": ["curve"]}}
    (folder / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")


def list_envs() -> list[dict]:
    root = envs_home()
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        lock = path / "requirements.lock"
        found.append({"name": path.name, "path": str(path), "packages": len(pinned(lock.read_text()))
                      if lock.exists() else 0, "kernel": kernel_dir(path.name).exists()})
    return found


def remove(name: str) -> None:
    target = envs_home() / name
    if not ENV_NAME_RE.match(name) or not target.is_dir():
        raise PangeoError(f"you have no environment {name!r}", "`pangeohub-env list` shows yours")
    shutil.rmtree(kernel_dir(name), ignore_errors=True)
    shutil.rmtree(target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="pangeohub-env", description="Your own Python environments, each a kernel "
                                     "'Python (NAME)' on top of the default stack, in your home.")
    sub = parser.add_subparsers(dest="command", required=True)
    made = sub.add_parser("create", help="Create an environment with these packages.")
    made.add_argument("name")
    made.add_argument("packages", nargs="+")
    sub.add_parser("list", help="Your environments.")
    gone = sub.add_parser("remove", help="Delete an environment and its kernel.")
    gone.add_argument("name")
    args = parser.parse_args(argv)
    if os.geteuid() == 0:
        print("error: pangeohub-env makes environments in your own home: run it as yourself, not as root\n"
              "  fix: administrators build shared ones with `pangeohub env build`", file=sys.stderr)
        sys.exit(2)
    try:
        if args.command == "create":
            path = create(args.name, args.packages)
            print(f"created {args.name} in {path}; reload JupyterLab's launcher to see the kernel "
                  f"'Python ({args.name})'")
        elif args.command == "list":
            rows = list_envs()
            for row in rows:
                print(f"{row['name']:<20} {row['packages']:>4} packages  {row['path']}")
            if not rows:
                print("no environments of your own (create one: pangeohub-env create NAME PACKAGE...)")
        else:
            remove(args.name)
            print(f"removed {args.name}")
    except PangeoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
