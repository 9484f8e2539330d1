"""What ``pangeohub users usage`` shows on this machine: each person's home use against their quota, and their
server's live memory and limits from their cgroup."""

from __future__ import annotations

import pwd

from pangeohub.accounts import AccountStore
from pangeohub.names import system_name
from pangeohub.targets.local import cgroups, homes


def collect(rt) -> list[dict]:
    config = rt.config
    backend = None
    if config.limits.enforce:
        try:
            from pangeohub.services.supervisor import supervisor_pid

            # v1 user cgroups sit below the cgroup the platform runs in: look from the supervisor's.
            backend = cgroups.backend_for(config.limits, pid=supervisor_pid(rt))
        except OSError:
            backend = None
    rows = []
    for account in AccountStore(rt.paths.accounts_db).list():
        linux = system_name(account.name, config.users.system_prefix)
        row = {"name": account.name, "system_user": linux, "home_used": None,
               "home_quota": config.homes.quota or None, "home_percent": None,
               "memory_used": None, "memory_limit": None, "cpus": None, "oom_kills": 0,
               "processes": None, "processes_limit": None, "processes_refused": 0}
        try:
            entry = pwd.getpwnam(linux)
        except KeyError:
            rows.append(row)  # never started a server: no home yet
            continue
        usage = homes.home_usage(config, entry)
        row["home_used"] = usage["used"]
        if row["home_quota"]:
            row["home_percent"] = round(100 * usage["used"] / row["home_quota"], 1)
        stats = backend.stats(linux) if backend else None
        if stats:
            row.update(memory_used=stats["memory_used"], memory_limit=stats["memory_limit"], cpus=stats["cpus"],
                       oom_kills=stats["oom_kills"], processes=stats["processes"],
                       processes_limit=stats.get("processes_limit"),
                       processes_refused=stats.get("processes_refused", 0))
        rows.append(row)
    return rows

