"""A person's server as a Slurm batch script: a pure function of the config, the profile and the account.

The job name marks the platform and the person (``job_name``), so that the hub can tell its own jobs from
everyone else's on a shared cluster when it reconciles (``pangeohub.targets.slurm.reconcile``). The script runs
the platform's Python by absolute path (the runtime is on the shared filesystem: ``up`` probes it on every
node) and never through the person's login shell (no ``--get-user-env``: docs/slurm.md, trap 6).
"""

from __future__ import annotations

import hashlib
import math
import shlex

JOB_PREFIX = "pangeohub"


def platform_tag(config) -> str:
    """Eight hex digits naming this platform (its state directory) among others on the same cluster."""
    return hashlib.sha256(str(config.state_dir.resolve()).encode()).hexdigest()[:8]


def job_name(config, hub_user: str) -> str:
    return f"{JOB_PREFIX}-{platform_tag(config)}-{hub_user}"


def hub_user_of(config, name: str) -> str | None:
    """The hub user a job of this platform belongs to, from its name (None: not this platform's job)."""
    prefix = f"{JOB_PREFIX}-{platform_tag(config)}-"
    return name[len(prefix):] or None if name.startswith(prefix) else None


def slurm_time(seconds: float) -> str:
    """sbatch --time as days-hours:minutes:seconds (whole seconds, rounded up)."""
    total = math.ceil(seconds)
    days, rest = divmod(total, 86400)
    return f"{days}-{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"


def resources(config, profile) -> list[str]:
    """The sbatch options of a profile: its CPUs and memory, then its Slurm resources, else the target's."""
    options = [f"--cpus-per-task={int(profile.cpus)}", f"--mem={max(1, int(profile.memory) >> 20)}M"]
    return options + slurm_options(config, profile.slurm)


def slurm_options(config, own) -> list[str]:
    """sbatch options from a ``SlurmResources`` (a profile's, or the gateway's), else the target's defaults."""
    defaults = config.target.slurm
    # A job whose node fails ends there: requeued, it would come back elsewhere under the same job id, where
    # nothing that started it (the hub, the gateway) expects it.
    options = ["--no-requeue"]
    for option, value in (("partition", own.partition or defaults.partition),
                          ("account", own.account or defaults.account),
                          ("qos", own.qos or defaults.qos),
                          ("reservation", own.reservation),
                          ("gres", own.gres)):
        if value:
            options.append(f"--{option}={value}")
    if own.time_limit:
        options.append(f"--time={slurm_time(own.time_limit)}")
    options.extend(own.extra)
    return options


def render(config, profile, hub_user: str, home: str, log_dir: str, env_names: list[str], argv: list[str],
           ) -> str:
    """The batch script; ``argv`` is the server's command line, ``env_names`` the variables sbatch exports."""
    lines = ["#!/bin/bash",
             f"#SBATCH --job-name={job_name(config, hub_user)}",
             f"#SBATCH --output={log_dir}/server-%j.log",
             f"#SBATCH --chdir={home}",
             # Only the spawner's variables (and Slurm's own): nothing of the hub's or the person's login shell.
             f"#SBATCH --export={','.join(sorted(env_names))}"]
    lines += [f"#SBATCH {option}" for option in resources(config, profile)]
    launcher = [str(config.install_dir / "bin" / "python"), "-m", "pangeohub.targets.slurm.singleuser", *argv]
    lines += ["", "set -eu", f"umask {config.users.umask}", "exec " + shlex.join(launcher), ""]
    return "\n".join(lines)
