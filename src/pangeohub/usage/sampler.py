"""The hub-managed service ``usage``: it records each person's use every minute, and serves the admin page and
the metrics endpoint at /services/usage/ (web.py).

Each round it asks the hub who exists and whose server runs (REST API, read-only scopes), reads the target's
compute source for each person (local: cgroup counters), the gateway's cluster records for the Dask sizes
people asked for, and every ``usage.storage_interval`` the size of homes and scratch prefixes; then writes it
all into the usage database in one transaction (store.py). The config comes from the hub as JSON in
``PANGEOHUB_SETTINGS`` (the same settings the spawner gets), so the service never reads another file.

Sampling runs on a thread of its own, the web side on the main thread's event loop: a slow round (listing a
large scratch bucket) never delays a page or a scrape, and a scrape never delays a sample.
"""

from __future__ import annotations

import os

HUB_PID = os.getppid()  # read first thing: the hub may die while the heavier imports below run

import json  # noqa: E402
import logging  # noqa: E402
import sqlite3  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from contextlib import closing  # noqa: E402
from datetime import datetime  # noqa: E402

from pangeohub.config.model import Config  # noqa: E402
from pangeohub.errors import PangeoError  # noqa: E402
from pangeohub.names import system_name  # noqa: E402
from pangeohub.paths import StatePaths  # noqa: E402
from pangeohub.usage.render import SERVICE  # noqa: E402
from pangeohub.usage.sources import source_for  # noqa: E402
from pangeohub.usage.store import PersonSample, UsageStore  # noqa: E402

log = logging.getLogger(SERVICE)
ACTIVE = (1, 2, 3)  # dask-gateway JobStatus CREATED, SUBMITTED, RUNNING: resources are held


def hub_users() -> list[dict]:
    request = urllib.request.Request(os.environ["JUPYTERHUB_API_URL"].rstrip("/") + "/users",
                                     headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _epoch(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


def requested_dask(gateway_db) -> dict[str, tuple[float, float]]:
    """Cores and memory bytes each person's active clusters hold now (scheduler and running workers), from the
    gateway's own records (read-only)."""
    if not gateway_db.exists():
        return {}
    held: dict[str, list[float]] = {}
    with closing(sqlite3.connect(f"file:{gateway_db}?mode=ro", uri=True, timeout=10)) as db:
        clusters = db.execute("SELECT id, username, config FROM clusters WHERE status IN (1, 2, 3)").fetchall()
        for cluster_id, username, config_text in clusters:
            config = json.loads(config_text or "{}")
            workers = db.execute("SELECT COUNT(*) FROM workers WHERE cluster_id = ? AND status IN (1, 2, 3)",
                                 (cluster_id,)).fetchone()[0]
            cores = config.get("scheduler_cores", 1) + workers * config.get("worker_cores", 1)
            memory = config.get("scheduler_memory", 0) + workers * config.get("worker_memory", 0)
            total = held.setdefault(username, [0.0, 0.0])
            total[0] += cores
            total[1] += memory
    return {name: (c, m) for name, (c, m) in held.items()}


def last_logins(accounts_db) -> dict[str, float]:
    """The latest successful login per person in the local account store (modes with local accounts)."""
    if not accounts_db.exists():
        return {}
    try:
        with closing(sqlite3.connect(f"file:{accounts_db}?mode=ro", uri=True, timeout=10)) as db:
            return dict(db.execute("SELECT name, MAX(at) FROM login_addresses GROUP BY name"))
    except sqlite3.OperationalError:
        return {}


class Sampler:
    def __init__(self, config: Config):
        self.config = config
        self.paths = StatePaths(config.state_dir)
        self.store = UsageStore(self.paths.usage_db)
        self.source = source_for(config)
        self.last_storage = 0.0
        from pangeohub.budgets.notices import BudgetWatch

        self.budgets = BudgetWatch(config, self.paths, log)
        self.latest: list[PersonSample] | None = None  # the last round's samples: the metrics' live figures

    def storage_levels(self, people: list[str]) -> dict[str, dict]:
        from pangeohub.usage.storage import home_bytes, scratch_usage

        levels = {p: {} for p in people}
        for person in people:
            home = home_bytes(self.config, system_name(person, self.config.users.system_prefix))
            if home is not None:
                levels[person]["home_bytes"] = home
        for person, (size, count) in scratch_usage(self.config, people).items():
            levels[person].update(scratch_bytes=size, scratch_objects=count)
        return levels

    def collect(self, users: list[dict], now: float) -> list[PersonSample]:
        prefix = self.config.users.system_prefix
        dask = requested_dask(self.paths.gateway_db)
        logins = last_logins(self.paths.accounts_db)
        people = [u["name"] for u in users]
        levels = {}
        if now - self.last_storage >= float(self.config.usage.storage_interval):
            try:
                levels = self.storage_levels(people)
                self.last_storage = now
            except Exception as exc:  # the object store restarting: storage is measured next round
                log.warning("storage sizes not measured: %s", exc)
        samples = []
        source_failed = False
        for user in users:
            name = user["name"]
            server = (user.get("servers") or {}).get("")
            sample = PersonSample(person=name, groups=list(user.get("groups") or []),
                                  last_login=logins.get(name), levels=levels.get(name, {}))
            if server and server.get("ready"):
                sample.server_running = True
                sample.server_started_at = _epoch(server.get("started"))
                sample.profile = (server.get("user_options") or {}).get("profile") or self.config.profiles[0].name
            measured = None
            if self.source and not source_failed:
                try:
                    measured = self.source.sample(name, system_name(name, prefix))
                except PangeoError as exc:  # Slurm's controller down: compute is sampled next round
                    log.warning("compute not sampled this round: %s", exc)
                    source_failed = True
            if measured:
                sample.counters = {"server_cpu": measured["server_cpu"], "dask_cpu": measured["dask_cpu"]}
                sample.memory_bytes, sample.dask_memory_bytes = measured["memory"], measured["dask_memory"]
            cores, memory = dask.get(name, (0.0, 0.0))
            sample.dask_requested_cores, sample.dask_requested_memory_bytes = cores, memory
            samples.append(sample)
        return samples

    def round(self, interval: float) -> int:
        now = time.time()
        users = hub_users()
        samples = self.collect(users, now)
        self.latest = samples
        self.store.record(samples, now, interval)
        if self.source:
            self.source.close()
        self.budgets.round(users)  # notices and admins' warnings from what was just recorded
        return len(samples)


def sample_forever(sampler: Sampler, interval: float, hub: int) -> None:
    # On this thread, like every round: the web side must answer the hub as soon as it can (serve.py).
    if sampler.source:
        description = sampler.source.describe()
        log.info("compute: %s", description)
        try:
            sampler.store.describe_compute(description)
        except Exception as exc:  # a corrupt or locked database: the rounds below say so each time
            log.warning("cannot record where compute figures come from: %s", exc)
    # Like the expiry service: the hub starts this in a session of its own, so it ends itself once the hub is
    # gone instead of sampling a platform that is down (that time must stay a gap).
    while os.getppid() == hub != 1:
        started = time.monotonic()
        try:
            sampler.round(interval)
        except PangeoError as exc:  # a corrupt database: said once per round, the platform goes on
            log.error("%s", exc)
        except Exception as exc:  # the hub restarting, a locked database: try again next round
            log.warning("usage sample failed: %s", exc)
        time.sleep(max(interval - (time.monotonic() - started), 1.0))


class WebState:
    """What the web handlers read: the config, and the sampler's latest round."""

    def __init__(self, config: Config, sampler: Sampler):
        self.config = config
        self.sampler = sampler

    def latest(self) -> list[PersonSample] | None:
        return self.sampler.latest


def main(argv: list[str] | None = None) -> None:
    import asyncio
    import threading

    logging.basicConfig(level=logging.INFO, format="[%(name)s %(asctime)s] %(message)s")
    config = Config.model_validate(json.loads(os.environ["PANGEOHUB_SETTINGS"]))
    sampler = Sampler(config)
    hub = HUB_PID
    threading.Thread(target=sample_forever, args=(sampler, float(config.usage.sample_interval), hub),
                     name="sampler", daemon=True).start()

    from pangeohub.usage.serve import serve

    from pangeohub.quickexit import exit_now

    try:
        asyncio.run(serve(WebState(config, sampler), config.usage.port, hub))
        log.info("the hub (pid %s) is gone: stopping", hub)
    except KeyboardInterrupt:  # the hub stopping its services: SIGINT, then it waits until this process is gone
        log.info("stopping")
    exit_now(0)


if __name__ == "__main__":
    main()
