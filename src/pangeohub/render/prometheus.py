"""The platform's Prometheus: its scrape config and web config (pure: no I/O).

Prometheus reads YAML; JSON is YAML, so the files are written as JSON and no YAML library is needed here.
It scrapes the usage service directly on loopback (the path is the one the hub's proxy serves), which keeps
working when the hub serves HTTPS under a name this machine may not resolve to itself.
"""

from __future__ import annotations

from pathlib import Path

from pangeohub.config import Config
from pangeohub.usage.render import metrics_path

JOB = "pangeohub"
USER = "pangeohub"  # the one account of the web UI and HTTP API (basic auth; the password is a secret)


def render_prometheus(config: Config, token_file: Path) -> dict:
    interval = f"{int(config.monitoring.scrape_interval)}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": [{
            "job_name": JOB,
            "metrics_path": metrics_path(),
            "scrape_timeout": f"{min(int(config.monitoring.scrape_interval), 20)}s",
            # The header the hub's own /hub/metrics takes: `Authorization: token <the service's API token>`.
            "authorization": {"type": "token", "credentials_file": str(token_file)},
            "static_configs": [{"targets": [f"127.0.0.1:{config.usage.port}"]}],
        }],
    }


def render_web_config(password_hash: str) -> dict:
    """Every local account can reach a loopback port: the HTTP API (everyone's usage) asks for a password."""
    return {"basic_auth_users": {USER: password_hash}}


def command(binary: str, config: Config, config_file: Path, web_file: Path, data: Path) -> list[str]:
    return [binary, f"--config.file={config_file}", f"--web.config.file={web_file}",
            f"--storage.tsdb.path={data}", f"--storage.tsdb.retention.time={int(config.monitoring.retention)}s",
            f"--web.listen-address=127.0.0.1:{config.monitoring.port}"]
