"""A real pangeohub on random loopback ports in a throw-away directory, and helpers to drive it.

Everything runs for real: the CLI in a subprocess, the supervisor, configurable-http-proxy, JupyterHub, and
user servers as freshly created Linux accounts. Teardown stops it all and removes every account it made.
"""

from __future__ import annotations

import grp
import itertools
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from pangeohub.config import load_config
from pangeohub.services.runtime import Runtime
from pangeohub.usersim import UserSim, run_sync


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_ports(count: int) -> list[int]:
    """``count`` different free ports (held together while chosen, so none is handed out twice)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def cli(*args: str, config: Path | None = None, input: str | None = None, check: bool = True,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the real ``pangeohub`` command line."""
    argv = [sys.executable, "-m", "pangeohub"] + (["--config", str(config)] if config else []) + list(args)
    proc = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"pangeohub {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


STORAGE_PORTS = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3_internal", "s3_grpc")


class Platform:
    """One platform instance. ``extra`` is merged into the generated config (per-feature sections)."""

    def __init__(self, extra: dict | None = None):
        # Not under /tmp/pytest-of-root: that is 0700, and user servers must reach their homes below it.
        self.root = Path(tempfile.mkdtemp(prefix="pangeohub-test-", dir="/var/tmp"))
        self.root.chmod(0o755)
        self.prefix = f"pt{secrets.token_hex(2)}-"
        ports = iter(free_ports(9 + len(STORAGE_PORTS)))
        self.config_data = {
            "state_dir": str(self.root / "state"),
            "install_dir": sys.prefix,
            "hub": {
                "ip": "127.0.0.1",
                "port": next(ports),
                "internal_port": next(ports),
                "proxy_api_port": next(ports),
                "admin_users": ["boss"],
            },
            "users": {"system_prefix": self.prefix, "home_root": str(self.root / "home")},
            # Small sample data: generating the default half-gigabyte would dominate the suite's time.
            "catalog": {"sample_size": "8M"},
            # Every port of its own, internal ones too: the default platform (8000, 8333, 9333...) may be running
            # beside the tests, and a test that probes an internal port must find this platform's, not that one.
            "storage": {"port": next(ports), "ports": {name: next(ports) for name in STORAGE_PORTS}},
            "gateway": {"api_port": next(ports), "proxy_port": next(ports), "scheduler_port": next(ports),
                        # small Dask processes: the test machine has 2 cores shared by everything. Workers keep the
                        # product's default (1G): with the Pangeo stack, xarray's reductions run numbagg, whose
                        # compilation alone took a 512M worker past Dask's pause threshold, where it waited forever.
                        "scheduler_memory": "512M",
                        "options": {"worker_memory": {"min": "256M", "default": "1G", "max": "1G"}}},
            # The usage service (page, metrics) and the platform's Prometheus when a test turns monitoring on.
            "usage": {"port": next(ports)},
            "monitoring": {"port": next(ports)},
        }
        for section, values in (extra or {}).items():
            if isinstance(values, dict):
                self.config_data.setdefault(section, {}).update(values)
            else:
                self.config_data[section] = values
        self.config_path = self.root / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config_data))
        self._names = itertools.count(1)
        self.passwords: dict[str, str] = {}

    @property
    def rt(self) -> Runtime:
        return Runtime(config=load_config(self.config_path), config_file=self.config_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config_data['hub']['port']}"

    def cli(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return cli(*args, config=self.config_path, **kwargs)

    def up(self) -> None:
        self.cli("up", "--detach")

    def down(self) -> None:
        self.cli("down", check=False)

    def add_user(self, name: str | None = None, admin: bool = False) -> tuple[str, str]:
        name = name or f"u{next(self._names)}{secrets.token_hex(2)}"
        password = secrets.token_urlsafe(12)
        self.cli("users", "add", name, "--password-stdin", *(["--admin"] if admin else []), input=password + "\n")
        self.passwords[name] = password
        return name, password

    def sim(self, name: str, **kwargs) -> UserSim:
        return UserSim(self.url, name, password=self.passwords.get(name), **kwargs)

    def system_user(self, name: str) -> pwd.struct_passwd:
        return pwd.getpwnam(self.prefix + name)

    def started_user(self, name: str | None = None):
        """Create a user, log in and start their server; returns (name, UserSim-token)."""
        name, _ = self.add_user(name)

        async def go():
            async with self.sim(name) as user:
                await user.login()
                await user.start_server()
                return user.token

        return name, run_sync(go())

    def run_code(self, name: str, token: str, code: str):
        """Run ``code`` in a fresh kernel of ``name``'s running server; returns the ExecResult."""

        async def go():
            async with UserSim(self.url, name, token=token) as user:
                return await user.run(code)

        return run_sync(go())

    def wait_for_catalog(self, timeout: float = 300) -> dict:
        """The catalog's entries once the background job has made the sample data."""
        import time

        from pangeohub.catalog.setup import AIR, PRECIP, catalog_file
        from pangeohub.catalog.store import Catalog

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entries = Catalog(catalog_file(self.rt)).entries()
            if AIR in entries and PRECIP in entries:
                return entries
            time.sleep(1)
        raise AssertionError("the sample data was not made:\n" + (self.rt.paths.log("catalog")).read_text())

    def _config_loads(self) -> bool:
        try:
            load_config(self.config_path)
        except Exception:
            return False
        return True

    def traces_of(self, name: str) -> list[str]:
        """Everything the platform made for hub user ``name`` that still exists (empty once it is released)."""
        from pangeohub.targets.local import homes
        from pangeohub.targets.local.lifecycle import runtime_root

        config = self.rt.config
        linux = self.prefix + name
        image = homes.image_path(config, linux)
        found = [f"mounted at {point}" for point in homes.mount_points(image)]
        found += [f"image {path}" for path in (image, image.with_suffix(".new")) if path.exists()]
        found += [f"runtime dir {path}" for path in [runtime_root(config) / linux] if path.exists()]
        found += [f"home {path}" for path in [config.users.home_root / linux] if path.exists()]
        try:
            found.append(f"Linux account {linux} (uid {pwd.getpwnam(linux).pw_uid})")
        except KeyError:
            pass
        return found

    def close(self) -> None:
        from pangeohub.release import release_account

        self.down()
        # Through the platform's own release (home image, mount, runtime dir, Linux account), as `users remove`.
        rt = Runtime(config=load_config(self.config_path)) if self._config_loads() else None
        for entry in pwd.getpwall():
            if entry.pw_name.startswith(self.prefix):
                if rt is not None:
                    release_account(rt, entry.pw_name[len(self.prefix):])
                else:  # a test left a config that does not load: the account at least
                    subprocess.run(["pkill", "-KILL", "-u", entry.pw_name], capture_output=True)
                    subprocess.run(["userdel", "-r", entry.pw_name], capture_output=True)
        for group in grp.getgrall():  # groups the platform made (e.g. the shared data folder's writers)
            if group.gr_name.startswith(self.prefix):
                subprocess.run(["groupdel", group.gr_name], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


def kernelspec_code(name: str, spec: dict) -> str:
    """Code that installs kernel spec ``name`` in the running person's home, as ``jupyter kernelspec`` would."""
    return ("import json, pathlib\n"
            f"d = pathlib.Path.home() / '.local/share/jupyter/kernels' / {name!r}\n"
            "d.mkdir(parents=True)\n"
            f"(d / 'kernel.json').write_text(json.dumps({spec!r}))")


def require_root() -> str | None:
    return None if os.geteuid() == 0 else "the platform creates Linux accounts: run the tests as root"


def run_in_kernel(platform, name: str, token: str, code: str, timeout: float = 300):
    """Run ``code`` in a new kernel of ``name``'s running server, as they would from a notebook; its output
    (stdout, stderr), asserting it ran without an error."""
    async def go():
        async with UserSim(platform.url, name, token=token) as user:
            return await user.run(code, timeout=timeout)

    out = run_sync(go())
    assert out.ok, f"{out.error}\n{out.stderr[-3000:]}"
    return out


def last_json(out):
    """The JSON the code printed last."""
    return json.loads(out.stdout.strip().splitlines()[-1])


def kernel_json(platform, name: str, token: str, code: str, timeout: float = 300):
    """``run_in_kernel``, for code that ends by printing its report as JSON: the report."""
    return last_json(run_in_kernel(platform, name, token, code, timeout))


def wait_for(predicate, what: str = "condition", timeout: float = 180.0, every: float = 1.0):
    """Poll ``predicate`` until it returns something true, and return that; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def usage_of(platform, name: str) -> dict | None:
    """The person's row of today's usage report, read in-process: polling through the CLI would cost a Python
    start per second on a machine the tests are measuring CPU on (test_usage_report.py covers the CLI)."""
    from pangeohub.usage.report import build
    from pangeohub.usage.store import UsageStore

    store = UsageStore(platform.rt.paths.usage_db)
    if not store.path.exists():
        return None
    rows, _, _ = build(store, "1d", None, "person")
    return {row["person"]: row for row in rows}.get(name)


def recorded_cpu(platform, name: str) -> float:
    """Server CPU seconds recorded for the person today."""
    return (usage_of(platform, name) or {}).get("server_cpu_seconds", 0.0)
