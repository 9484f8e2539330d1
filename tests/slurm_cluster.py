"""A real multi-node Slurm cluster on this one machine, for the tests.

The controller runs on the host with the hub-side address of a private bridge; each compute node's ``slurmd``
runs in its own network namespace with its own address on that bridge, so to the network "the node" is another
host: a server bound to 127.0.0.1, or a URL that says 127.0.0.1, fails as it would on a real cluster. The
filesystem is shared by construction, like a site's shared filesystem.

Everything is the test's own, so that several test runs on the machine never meet: its own munge key and
``munged`` socket, its own /24 in the benchmarking range 198.18.0.0/15 (one not in use on the machine), its
own bridge and namespace names, its own controller port and state directories. ``stop()`` removes all of it.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SLURM_BINARIES = ("slurmctld", "slurmd", "munged", "sbatch")
_SEQUENCE = itertools.count()  # several clusters in one test process


def missing_requirement() -> str | None:
    """Why this machine cannot run the cluster, or None when it can."""
    if os.geteuid() != 0:
        return "the Slurm test cluster starts slurmd/slurmctld, namespaces and a bridge: needs root"
    lacking = [b for b in SLURM_BINARIES if not shutil.which(b)]
    if lacking:
        return f"{', '.join(lacking)} not installed: run `python3 install.py --dev`"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


def _run(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _unused_subnet() -> int:
    """The third octet of a 198.18.X.0/24 that no interface on the machine uses (another run may hold one)."""
    used = _run("ip", "-o", "-4", "addr", "show").stdout
    for third in range(20 + os.getpid() % 200, 256):
        if f"198.18.{third}." not in used:
            return third
    raise RuntimeError("no free 198.18.X.0/24 for the test cluster")


def memory_cgroup_v1() -> str | None:
    """Why Slurm's task/cgroup memory limits cannot work here, or None when the memory controller is there."""
    if Path("/sys/fs/cgroup/cgroup.controllers").exists():
        return None  # cgroup v2: Slurm 22.05 supports it too (cgroup/v2); not the case on this machine
    if not Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists():
        return "the cgroup v1 memory controller is not mounted at /sys/fs/cgroup/memory"
    return None


class SlurmCluster:
    """A controller plus ``nodes`` compute nodes; ``start()`` returns when every node is idle."""

    def __init__(self, nodes: int = 2, cpus: int = 4, memory_mb: int = 4000, accounting: bool = False):
        # pid + sequence: unique on the machine, and short enough for 15-character interface names
        self.tag = f"{os.getpid() % 100000}x{next(_SEQUENCE)}"
        self.root = Path(tempfile.mkdtemp(prefix="pangeohub-test-slurm-", dir="/var/tmp"))
        self.root.chmod(0o755)
        self.conf = self.root / "slurm.conf"
        # Node names are unique on the machine too: slurmd names its cgroups after them (slurm_<node>).
        self.node_names = [f"ph{self.tag}n{i + 1}" for i in range(nodes)]
        self.cpus, self.memory_mb = cpus, memory_mb
        self.partition = "compute"
        self.procs: list[subprocess.Popen] = []
        self.slurmd: dict[str, subprocess.Popen] = {}
        self.slurmctld: subprocess.Popen | None = None
        self.bridge = f"phs{self.tag}br"
        self.namespaces: list[str] = []
        self.users: list[str] = []
        self.memory_enforced = memory_cgroup_v1() is None
        self.subnet = None
        self.started_in = 0.0
        self.accounting = None  # a SlurmAccounting (MariaDB + slurmdbd) when asked for
        self.with_accounting = accounting

    # -- addresses ---------------------------------------------------------------------------------------
    @property
    def hub_address(self) -> str:
        return f"198.18.{self.subnet}.1"

    def node_address(self, node: str) -> str:
        return f"198.18.{self.subnet}.{11 + self.node_names.index(node)}"

    def netns(self, node: str) -> str:
        return f"phs{self.tag}-{node}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> "SlurmCluster":
        started = time.monotonic()
        self.subnet = _unused_subnet()
        self._network()
        self._munge()
        if self.with_accounting:
            from slurm_accounting import SlurmAccounting

            self.accounting = SlurmAccounting(self.conf, self.tag, self.munge_socket,
                                              self.hub_address)
            self.accounting.start()
        self._write_conf()
        if self.accounting:  # before slurmctld starts, so that it finds its cluster in the database
            self.accounting.register(self.run, f"ph{self.tag}")
        self.slurmctld = self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
        for node in self.node_names:
            self.start_node(node)
        self.wait_idle()
        self.started_in = time.monotonic() - started
        return self

    def start_controller(self, timeout: float = 30) -> None:
        """slurmctld again, after a test stopped it: it recovers the jobs from its state directory, so that the
        module's teardown cancels them through it instead of waiting for a controller that never answers."""
        self.slurmctld = self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
        deadline = time.monotonic() + timeout
        while self.run("sinfo", check=False).returncode and time.monotonic() < deadline:
            time.sleep(0.5)

    def start_node(self, node: str) -> None:
        # nsenter --net, not `ip netns exec`: the latter remounts /sys without the cgroup filesystem and
        # slurmd then dies with "Unable to initialize cgroup plugin".
        self.slurmd[node] = self._spawn("nsenter", f"--net=/run/netns/{self.netns(node)}",
                                        "slurmd", "-D", "-f", str(self.conf), "-N", node)

    def wait_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            out = self.run("sinfo", "-h", "-N", "-o", "%N %t", check=False).stdout.split()
            states = dict(zip(out[0::2], out[1::2]))
            if all(states.get(n) == "idle" for n in self.node_names):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"Slurm nodes not idle after {timeout}s: {states}\n{self.logs()}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.slurmctld and self.slurmctld.poll() is None:
            self.run("scancel", "--full", f"--partition={self.partition}", check=False, timeout=10)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._kill_job_leftovers()
        if self.accounting:
            self.accounting.stop()
        for i, ns in enumerate(self.namespaces):
            _run("ip", "netns", "delete", ns, check=False)
            # The namespace (and its veth pair) lives on while any process is in it: delete the host end too.
            _run("ip", "link", "delete", f"phs{self.tag}h{i}", check=False)
        _run("ip", "link", "delete", self.bridge, check=False)
        for user in self.users:
            _run("userdel", "-r", user, check=False)
        self._remove_cgroups()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------------------------
    def run(self, *argv: str, check: bool = True, timeout: float = 30, user: str | None = None,
            ) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster (optionally as ``user``)."""
        if user:
            argv = ("runuser", "-u", user, "--", "env", f"SLURM_CONF={self.conf}", *argv)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env,
                              cwd=self.root)
        if check and proc.returncode:
            raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def add_user(self, stem: str = "slu") -> pwd.struct_passwd:
        """A throw-away Linux account with a home on the (shared) filesystem."""
        name = f"ph{stem}{self.tag}{len(self.users)}"
        home = self.root / "home" / name
        home.parent.mkdir(exist_ok=True, mode=0o755)
        _run("useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash", name)
        self.users.append(name)
        return pwd.getpwnam(name)

    def logs(self) -> str:
        parts = []
        for log in sorted(self.root.glob("*.log")):
            parts.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        if self.accounting:
            parts.append(self.accounting.logs())
        return "\n".join(parts)

    def _spawn(self, *argv: str) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.env,
                                cwd=self.root)
        self.procs.append(proc)
        return proc

    def _network(self) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.hub_address}/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for i, node in enumerate(self.node_names):
            ns, host_end, node_end = self.netns(node), f"phs{self.tag}h{i}", f"phs{self.tag}n{i}"
            _run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", node_end, "netns", ns)
            _run("ip", "link", "set", host_end, "master", self.bridge, "up")
            _run("ip", "-n", ns, "addr", "add", f"{self.node_address(node)}/24", "dev", node_end)
            _run("ip", "-n", ns, "link", "set", node_end, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")

    def _munge(self) -> None:
        munge = pwd.getpwnam("munge")
        mdir = self.root / "munge"
        mdir.mkdir(mode=0o755)  # the socket's directory must be o+x for every job's user
        key = mdir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        for path in (mdir, key):
            os.chown(path, munge.pw_uid, munge.pw_gid)
        self.munge_socket = mdir / "munge.socket"
        self._spawn("runuser", "-u", "munge", "--", "munged", "--foreground", f"--key-file={key}",
                    f"--socket={self.munge_socket}", f"--pid-file={mdir / 'munged.pid'}",
                    f"--log-file={mdir / 'munged.log'}", f"--seed-file={mdir / 'munged.seed'}")
        deadline = time.monotonic() + 10
        while not self.munge_socket.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("munged did not create its socket in 10 s")
            time.sleep(0.05)

    def _write_conf(self) -> None:
        r = self.root
        for sub in ("state", "spool"):
            (r / sub).mkdir(mode=0o755)
        nodes = "\n".join(
            f"NodeName={n} NodeAddr={self.node_address(n)} CPUs={self.cpus} RealMemory={self.memory_mb}"
            " State=UNKNOWN"
            for n in self.node_names)
        accounting_off = "JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n"
        if self.memory_enforced:
            task = "TaskPlugin=task/cgroup\nProctrackType=proctrack/cgroup"
            (r / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\nConstrainRAMSpace=yes\n"
                                           "ConstrainSwapSpace=yes\nAllowedSwapSpace=0\n")
        else:
            task = "TaskPlugin=task/none\nProctrackType=proctrack/linuxproc"
        self.conf.write_text(f"""\
ClusterName=ph{self.tag}
SlurmctldHost={socket.gethostname()}({self.hub_address})
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}/%n
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd-%n.pid'}
SlurmctldLogFile={r / 'slurmctld.log'}
SlurmdLogFile={r / 'slurmd-%n.log'}
SlurmdParameters=config_overrides
MailProg=/bin/true
{task}
{self.accounting.slurm_conf() if self.accounting else accounting_off}SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
MpiDefault=none
SchedulerParameters=sched_interval=2
MessageTimeout=5
{nodes}
PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=60 State=UP
""")

    def _kill_job_leftovers(self) -> None:
        """Kill what is still running in this cluster's node namespaces, and only that.

        slurmstepd (root) outlives slurmd when the controller is gone or a cancel is still in flight, and
        keeps the job's processes and the namespace alive. Only processes whose network namespace is one of
        this cluster's private ones are touched; nothing else on the machine can be in them.
        """
        ours = set()
        for ns in self.namespaces:
            try:
                ours.add(os.stat(f"/run/netns/{ns}").st_ino)
            except OSError:
                pass
        for _ in range(3):
            victims = []
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        if os.stat(f"/proc/{entry}/ns/net").st_ino in ours:
                            victims.append(int(entry))
                    except OSError:
                        pass
            if not victims:
                return
            for pid in victims:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)

    def _remove_cgroups(self) -> None:
        if not self.memory_enforced:
            return
        for controller in ("memory", "freezer", "cpuset", "devices"):
            for node in self.node_names:
                base = Path(f"/sys/fs/cgroup/{controller}/slurm_{node}")
                # innermost first: a cgroup directory is removed with rmdir once it has no children
                for d in sorted(base.rglob("*"), key=lambda p: -len(p.parts)) if base.exists() else []:
                    if d.is_dir():
                        try:
                            d.rmdir()
                        except OSError:
                            pass
                try:
                    base.rmdir()
                except OSError:
                    pass


# Shared by the Slurm test modules: `from slurm_cluster import cluster, person, requires_slurm`.
requires_slurm = pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))


def missing_accounting() -> str | None:
    """Why this machine cannot run the cluster with accounting (MariaDB + slurmdbd), or None when it can."""
    from slurm_accounting import ACCOUNTING_BINARIES

    lacking = [b for b in ACCOUNTING_BINARIES if not shutil.which(b)]
    if lacking:
        return f"{', '.join(lacking)} not installed: run `python3 install.py --dev`"
    return missing_requirement()


requires_accounting = pytest.mark.skipif(missing_accounting() is not None, reason=str(missing_accounting()))


@pytest.fixture(scope="module")
def cluster():
    """A running two-node cluster for one test module, torn down after it."""
    c = SlurmCluster(nodes=2)
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def accounting_cluster():
    """A running two-node cluster with Slurm's accounting (MariaDB, slurmdbd, jobacct_gather/linux)."""
    c = SlurmCluster(nodes=2, accounting=True)
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def person(cluster):
    """A non-root person known on every node of ``cluster``."""
    return cluster.add_user()
