"""Slurm's accounting for the test cluster: a private MariaDB and a ``slurmdbd`` (``SlurmCluster(accounting=True)``).

Everything is the cluster's own, under its temporary directory: MariaDB's data directory, socket and a loopback
port; slurmdbd's config (0600, owned by SlurmUser), port, log and pid file. A site's own database and slurmdbd,
if the machine had any, are never touched. ``stop()`` ends both daemons; the cluster removes the directory.
"""

from __future__ import annotations

import os
import pwd
import secrets
import socket
import subprocess
import time
from pathlib import Path

ACCOUNTING_BINARIES = ("slurmdbd", "mariadbd", "mariadb-install-db", "sacctmgr")
# Seconds between jobacct_gather/linux's readings of every step's processes: how stale a running step's figures
# may be, so what a test waits for a reading. Short: a test waits for it several times.
GATHER_SECONDS = 2


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _wait(predicate, what: str, timeout: float, logs, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: it exited ({proc.returncode})\n{logs()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} within {timeout:g} s\n{logs()}")
        time.sleep(0.2)


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class SlurmAccounting:
    """MariaDB plus slurmdbd for one test cluster; ``slurm_conf()`` is what slurm.conf needs to use them."""

    def __init__(self, slurm_conf: Path, tag: str, munge_socket: Path, address: str):
        self.slurm_conf_path = slurm_conf
        self.dir = slurm_conf.parent / "accounting"
        self.tag, self.munge_socket, self.address = tag, munge_socket, address
        self.db_port = _free_port()
        self.dbd_port = _free_port(address)
        self.password = secrets.token_hex(16)
        self.procs: list[subprocess.Popen] = []
        self.dbd: subprocess.Popen | None = None

    def slurm_conf(self) -> str:
        # AccountingStoragePass names the munge socket for slurmdbd's connections (AuthInfo is not used there).
        # jobacct_gather/linux polls every step's processes (every GATHER_SECONDS): that is what gives sacct its
        # TotalCPU and sstat the figures of running steps.
        return (f"AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost={self.address}\n"
                f"AccountingStoragePort={self.dbd_port}\nAccountingStoragePass={self.munge_socket}\n"
                "JobAcctGatherType=jobacct_gather/linux\n"
                f"JobAcctGatherFrequency=task={GATHER_SECONDS}\n")

    def start(self) -> None:
        self.dir.mkdir(mode=0o755)
        self._mariadb()
        self._slurmdbd()

    def _mariadb(self) -> None:
        mysql = pwd.getpwnam("mysql")
        data = self.dir / "mysql"
        data.mkdir(mode=0o700)
        os.chown(data, mysql.pw_uid, mysql.pw_gid)
        self.db_socket = self.dir / "mysqld.sock"
        os.chown(self.dir, mysql.pw_uid, mysql.pw_gid)  # the socket and the error log are written here
        # --no-defaults: the machine's /etc/mysql settings (its socket, data directory) are not ours.
        common = [f"--datadir={data}", "--user=mysql", "--innodb-buffer-pool-size=16M",
                  "--innodb-log-file-size=8M"]
        proc = subprocess.run(["mariadb-install-db", "--no-defaults", *common, "--skip-test-db",
                               "--auth-root-authentication-method=socket"],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode:
            raise RuntimeError(f"mariadb-install-db failed: {proc.stderr.strip()[-2000:]}")
        db = self.spawn(
            "mariadbd", "--no-defaults", *common, f"--socket={self.db_socket}", "--bind-address=127.0.0.1",
            f"--port={self.db_port}", f"--pid-file={self.dir / 'mysqld.pid'}",
            f"--log-error={self.dir / 'mysqld.log'}", "--skip-name-resolve", "--performance-schema=OFF")
        _wait(lambda: self.db_socket.exists() and _listening("127.0.0.1", self.db_port),
              "MariaDB did not listen", 60, self.logs, db)
        # root logs in through the socket (unix_socket authentication); slurmdbd gets its own user on loopback.
        self.sql(f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.password}';"
                 f"GRANT ALL ON slurm_acct_{self.tag}.* TO 'slurm'@'127.0.0.1';")

    def spawn(self, *argv: str, env: dict | None = None) -> subprocess.Popen:
        # What a daemon says before its log file is open (a config it refuses) goes to <name>.stderr.
        with open(self.dir / f"{Path(argv[0]).name}.stderr", "ab") as err:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, cwd=self.dir,
                                    env={**os.environ, **(env or {})})
        self.procs.append(proc)
        return proc

    def sql(self, statements: str) -> str:
        proc = subprocess.run(["mariadb", "--no-defaults", f"--socket={self.db_socket}", "-u", "root",
                               "-N", "-e", statements], capture_output=True, text=True, timeout=30)
        if proc.returncode:
            raise RuntimeError(f"MariaDB refused {statements!r}: {proc.stderr.strip()}")
        return proc.stdout

    def _slurmdbd(self) -> None:
        # slurmdbd has no option for its config: it reads slurmdbd.conf beside SLURM_CONF's slurm.conf.
        conf = self.slurm_conf_path.parent / "slurmdbd.conf"
        # slurmdbd refuses a config that others can read (it holds the database password).
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"""\
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
DbdHost={socket.gethostname()}
DbdAddr={self.address}
DbdPort={self.dbd_port}
SlurmUser=root
PidFile={self.dir / 'slurmdbd.pid'}
LogFile={self.dir / 'slurmdbd.log'}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.db_port}
StorageUser=slurm
StoragePass={self.password}
StorageLoc=slurm_acct_{self.tag}
""")
        os.chown(conf, 0, 0)  # SlurmUser (root) owns it
        self.start_slurmdbd()

    def start_slurmdbd(self) -> None:
        self.dbd = self.spawn("slurmdbd", "-D", env={"SLURM_CONF": str(self.slurm_conf_path)})
        _wait(lambda: _listening(self.address, self.dbd_port), "slurmdbd did not listen", 60, self.logs,
              self.dbd)

    def stop_slurmdbd(self) -> None:
        """slurmdbd down (a test of what the platform does then); ``start_slurmdbd()`` brings it back."""
        self.dbd.terminate()
        self.dbd.wait(20)

    def register(self, run, cluster_name: str) -> None:
        """The cluster in the accounting database (AccountingStorageEnforce stays off: no accounts needed)."""
        run("sacctmgr", "-i", "add", "cluster", cluster_name)

    def logs(self) -> str:
        parts = []
        for log in ("mysqld.log", "slurmdbd.log", "mariadbd.stderr", "slurmdbd.stderr"):
            path = self.dir / log
            if path.exists():
                parts.append(f"--- {log}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(parts)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
