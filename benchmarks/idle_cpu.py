"""CPU used by a running platform while nobody uses it: the whole process tree, and each service's share.

Reads the supervisor's pidfile of the platform in ``--state-dir`` (default: the default platform,
``/var/lib/pangeohub``), takes the CPU time (user + system) of the supervisor and every process below it at the
start and at the end of ``--seconds``, and prints the difference as a share of one core. Processes that start
during the window count from zero; nothing is started or changed, so it can run beside a live platform.

    sudo /opt/pangeohub/bin/python benchmarks/idle_cpu.py [--seconds 300] [--state-dir /var/lib/pangeohub]

``--fresh`` instead brings up a throw-away platform on random loopback ports (the test harness), waits for its
background jobs to end, optionally has its object store take ``--write`` MB (as people's work would), waits a
minute more, then measures it (``--memory-limit`` sets ``storage.memory_limit``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import psutil


def tree(root: int) -> dict[int, psutil.Process]:
    top = psutil.Process(root)
    return {proc.pid: proc for proc in [top, *top.children(recursive=True)]}


def cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def service_of(pid: int, services: dict[int, str], procs: dict[int, psutil.Process]) -> str:
    """The service a process belongs to: the nearest ancestor that is a service's own process."""
    try:
        chain = [procs[pid], *procs[pid].parents()]
    except psutil.Error:
        return "?"
    for proc in chain:
        if proc.pid in services:
            return services[proc.pid]
    return "supervisor"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--state-dir", type=Path, default=Path("/var/lib/pangeohub"))
    parser.add_argument("--fresh", action="store_true", help="measure a throw-away platform of this checkout")
    parser.add_argument("--memory-limit", default=None, help="storage.memory_limit of the --fresh platform")
    parser.add_argument("--write", type=int, default=0,
                        help="MB the --fresh platform's object store takes (8 MB objects, then deleted) before idling")
    args = parser.parse_args()
    if not args.fresh:
        return measure(args.state_dir, args.seconds)

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from harness import Platform

    platform = Platform(extra={"storage": {"memory_limit": args.memory_limit}} if args.memory_limit else None)
    try:
        platform.up()
        platform.wait_for_catalog()
        if args.write:
            from pangeohub.storage.admin import admin_client

            s3, block = admin_client(platform.rt), os.urandom(8 << 20)
            for index in range(args.write // 8):
                s3.put_object(Bucket="scratch", Key=f"idle-bench/{index}", Body=block)
            for index in range(args.write // 8):
                s3.delete_object(Bucket="scratch", Key=f"idle-bench/{index}")
        time.sleep(60)  # the catalog job's writes settle
        print(f"fresh platform, storage.memory_limit {platform.rt.config.storage.memory_limit >> 20} MiB, "
              f"{args.write} MB written and deleted before")
        return measure(platform.rt.paths.root, args.seconds)
    finally:
        platform.close()


def measure(state_dir: Path, seconds: float) -> int:
    run = state_dir / "run"
    try:
        supervisor = int((run / "supervisor.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        print(f"no running platform under {state_dir} (no {run / 'supervisor.pid'})", file=sys.stderr)
        return 1
    services = {}
    for pidfile in run.glob("*.pid"):
        if pidfile.stem != "supervisor":
            try:
                services[int(pidfile.read_text().split()[0])] = pidfile.stem
            except (OSError, ValueError, IndexError):
                pass

    before_procs = tree(supervisor)
    before = {}
    for pid, proc in before_procs.items():
        try:
            before[pid] = (proc.create_time(), cpu(proc))
        except psutil.Error:
            pass
    began = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - began
    after_procs = tree(supervisor)

    used: dict[str, float] = {}
    names: dict[str, float] = {}
    for pid, proc in after_procs.items():
        try:
            created, now = proc.create_time(), cpu(proc)
        except psutil.Error:
            continue
        start = before[pid][1] if pid in before and before[pid][0] == created else 0.0
        service = service_of(pid, services, after_procs)
        used[service] = used.get(service, 0.0) + now - start
        label = f"{service}: {proc.name()}"
        names[label] = names.get(label, 0.0) + now - start

    total = sum(used.values())
    load = os.getloadavg()
    print(f"platform under {state_dir}: {len(after_procs)} processes, {elapsed:.0f} s idle, "
          f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} on {os.cpu_count()} cores")
    print(f"whole platform: {total:7.2f} CPU-s = {100 * total / elapsed:5.2f}% of one core")
    for label, seconds in sorted(names.items(), key=lambda item: -item[1]):
        print(f"  {label:40s} {seconds:7.2f} CPU-s = {100 * seconds / elapsed:5.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
