"""Usage on a Slurm cluster that has Slurm's accounting (slurmdbd, jobacct_gather/linux): CPU time is measured.

The cluster is the real two-node test cluster with its own MariaDB and slurmdbd; the platform runs people's
servers on it (target slurm) and samples usage every few seconds. A person burns a known amount of CPU in their
kernel; the usage record says what Slurm measured, not what it allocated.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from harness import Platform, recorded_cpu
from slurm_accounting import GATHER_SECONDS
from slurm_cluster import accounting_cluster, requires_accounting  # noqa: F401 (fixture)

from pangeohub.targets.slurm.sacct import cpu_seconds, parse_sacct, parse_sstat
from pangeohub.usersim import run_sync

INTERVAL = 2  # seconds between samples
GATHER = GATHER_SECONDS  # the cluster's JobAcctGatherFrequency: how stale a running step's figures may be
BURN = 20  # CPU seconds the kernel burns


def burn(seconds: float) -> str:
    """Code that burns ``seconds`` of CPU in the kernel and prints how much it burned."""
    return ("import time\n"
            "start = time.process_time()\n"
            f"while time.process_time() - start < {seconds}:\n"
            "    sum(i * i for i in range(10000))\n"
            "print(time.process_time() - start)\n")


@pytest.fixture(scope="module")
def hub(accounting_cluster):  # noqa: F811 (fixture)
    cluster = accounting_cluster
    platform = Platform(extra={
        "target": {"kind": "slurm", "slurm": {"slurm_conf": str(cluster.conf), "address": cluster.hub_address,
                                              "accounts": "platform", "poll_interval": "2s",
                                              "command_timeout": "8s"}},
        "hub": {"start_timeout": 45},
        "gateway": {"enabled": False},  # Dask jobs are told apart by name like servers (test_slurm_gateway.py)
        "profiles": [{"name": "small", "cpus": 1, "memory": "400M"}],
        "usage": {"sample_interval": f"{INTERVAL}s"},
    })
    try:
        platform.up()
        yield platform
    finally:
        log = platform.rt.paths.log("hub")
        if log.exists():  # shown by pytest when the test failed
            print("--- hub log\n" + "\n".join(log.read_text(errors="replace").splitlines()[-80:]))
        platform.close()




async def until(predicate, what, timeout=90.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(1)


def test_slurms_figures_are_read_as_slurm_22_05_prints_them():
    assert cpu_seconds("00:08.019") == 8.019 and cpu_seconds("01:02:03") == 3723
    assert cpu_seconds("1-00:00:01") == 86401 and cpu_seconds("") == 0
    # sstat --parsable2 (a job with two running steps): CPU time and memory in use, summed per job.
    running = parse_sstat("7.batch|cpu=00:00:08,energy=0,fs/disk=52226,mem=11152K,pages=0,vmem=18312K\n"
                          "7.0|cpu=00:01:00,mem=1.5M\n")
    assert running == {"7": (68.0, 11152 * 1024 + int(1.5 * 2**20))}
    # sacct --parsable2: the job's own line names it; its steps' TotalCPU is added (never the job's line too).
    ended = parse_sacct("9|pangeohub-ab|alice|00:08.019|2026-12-07T06:52:53\n"
                        "9.batch|batch||00:08.019|2026-12-07T06:52:53\n"
                        "10|other|bob|00:00:00|Unknown\n")
    assert list(ended) == ["9"] and ended["9"].cpu == 8.019 and ended["9"].user == "alice"


@requires_accounting
def test_server_cpu_is_what_slurms_accounting_measured(hub, accounting_cluster):  # noqa: F811
    """The kernel burns BURN CPU seconds: the person's server CPU grows by that (within 20 %), while the job
    runs (sstat) and once it has ended (sacct's final figure); the report says the figures are measured."""
    name, _ = hub.add_user()
    account = hub.system_user(name).pw_name

    async def go():
        async with hub.sim(name) as user:
            await user.login()
            await user.start_server({"profile": "small"})
            kernel = await user.start_kernel()
            # The server's and the kernel's start are read (jobacct_gather polls every GATHER s) before burning.
            await asyncio.sleep(GATHER + 3 * INTERVAL)
            before = recorded_cpu(hub, name)
            result = await user.execute(kernel, burn(BURN), timeout=240)
            assert not result.error, result.error
            burned = float(result.stdout)
            await until(lambda: recorded_cpu(hub, name) - before >= 0.8 * burned, "sstat's figures of the kernel")
            running = recorded_cpu(hub, name) - before
            await user.stop_kernel(kernel)
            await user.stop_server()
            return before, burned, running

    before, burned, running = run_sync(go())
    assert before > 0  # the server's own start, measured
    assert running <= 1.2 * burned, (running, burned)

    async def ended():
        await until(lambda: not accounting_cluster.run("squeue", "-h", "-u", account).stdout.strip(),
                    "the server's job to end")
        await asyncio.sleep(GATHER + 3 * INTERVAL)  # slurmdbd has the job's end; the sampler folds it in

    run_sync(ended())
    final = recorded_cpu(hub, name) - before
    print(f"burned {burned:.1f} s of CPU in the kernel; recorded {running:.1f} s while running, "
          f"{final:.1f} s once the job ended")
    assert abs(final - burned) <= 0.2 * burned, (final, burned)

    report = hub.cli("usage", "report", "--since", "1d")
    assert name in report.stdout
    assert "compute: measured: CPU time from Slurm's accounting (sacct/sstat" in report.stdout, report.stdout


@requires_accounting
def test_slurmdbd_down_is_said_once_and_nothing_is_lost_or_counted_twice(hub, accounting_cluster):  # noqa: F811
    """slurmdbd stops: the log says so once; running jobs are still measured (sstat asks the nodes through the
    controller); a job that ends meanwhile keeps its last reading, and its final figure comes from sacct once
    slurmdbd is back, counted once."""
    name, _ = hub.add_user()
    account = hub.system_user(name).pw_name
    log = hub.rt.paths.log("hub")
    accounting = accounting_cluster.accounting

    async def go():
        async with hub.sim(name) as user:
            await user.login()
            await user.start_server({"profile": "small"})
            job_id = accounting_cluster.run("squeue", "-h", "-u", account, "-o", "%i").stdout.strip()
            kernel = await user.start_kernel()
            accounting.stop_slurmdbd()
            await until(lambda: "Slurm's accounting failed (sacct): " in log.read_text(), "the log to say so")
            await asyncio.sleep(GATHER + 3 * INTERVAL)
            before = recorded_cpu(hub, name)
            result = await user.execute(kernel, burn(BURN), timeout=240)
            assert not result.error, result.error
            burned = float(result.stdout)
            await until(lambda: recorded_cpu(hub, name) - before >= 0.8 * burned, "sstat's figures")
            await user.stop_kernel(kernel)
            await user.stop_server()
            return job_id, before, burned

    job_id, before, burned = run_sync(go())

    async def ended():
        await until(lambda: not accounting_cluster.run("squeue", "-h", "-u", account).stdout.strip(),
                    "the server's job to end")
        await asyncio.sleep(2 * INTERVAL)

    run_sync(ended())
    kept = recorded_cpu(hub, name) - before  # the last reading, while sacct cannot say more
    accounting.start_slurmdbd()

    async def back():
        def final_in_sacct():
            out = accounting_cluster.run("sacct", "-n", "-P", "-X", "-j", job_id, "-o", "State", check=False)
            return out.stdout.strip() not in ("", "RUNNING")

        await until(final_in_sacct, "slurmctld to give slurmdbd the job's end", timeout=120)
        await until(lambda: "Slurm's accounting answers again" in log.read_text(), "the log to say so")
        await asyncio.sleep(2 * INTERVAL)

    run_sync(back())
    final = recorded_cpu(hub, name) - before
    print(f"slurmdbd down: burned {burned:.1f} s; kept {kept:.1f} s after the job ended, {final:.1f} s once "
          "slurmdbd was back")
    assert kept >= 0.8 * burned and abs(final - burned) <= 0.2 * burned, (kept, final, burned)
    assert log.read_text().count("Slurm's accounting failed") == 1
