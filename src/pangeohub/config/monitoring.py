"""The ``monitoring:`` config section: a Prometheus the platform runs for itself.

The metrics endpoint (``/services/usage/metrics``) exists whenever accounting is on; this section only says
whether ``pangeohub up`` also runs a Prometheus that scrapes it and keeps the series for ``retention``.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from pangeohub.config.base import Port, Section, check_port
from pangeohub.units import Duration


class MonitoringSection(Section):
    prometheus: bool = Field(
        False, description="Run a Prometheus (Debian's `prometheus` package, which the installer adds when this is "
        "on) as a platform service: it scrapes /services/usage/metrics, keeps its data in <state_dir>/prometheus and "
        "answers on 127.0.0.1:monitoring.port with the user 'pangeohub' and the password in "
        "<state_dir>/secrets/prometheus_password.",
    )
    retention: Duration = Field(
        "15d", description="How long Prometheus keeps samples (its --storage.tsdb.retention.time), e.g. 15d, 90d.",
    )
    port: Port = Field(9095, description="Loopback port of the platform's Prometheus (web UI and HTTP API); not 9090, where a "
                       "Prometheus the machine runs already would be.")
    scrape_interval: Duration = Field(
        "30s", description="Time between two scrapes of the metrics endpoint (Prometheus's scrape_interval).",
    )

    _port = field_validator("port")(check_port)

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: float) -> float:
        if value < 3600:
            raise ValueError("keep at least 1h of samples, e.g. 15d")
        return value

    @field_validator("scrape_interval")
    @classmethod
    def _interval(cls, value: float) -> float:
        if not 1 <= value <= 3600:
            raise ValueError("must be between 1s and 1h, e.g. 30s")
        return value
