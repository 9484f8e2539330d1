"""Config sections for accounting (``usage:``) and prices (``costs:``).

Prices are the operator's own figures (what their cloud bill or hardware costs); ``pangeohub cost estimate``
compares against a dated table of public prices kept in the repository (``pangeohub/usage/prices.json``).
"""

from __future__ import annotations

import math

from pydantic import Field, field_validator

from pangeohub.config.base import Port, Section, check_port
from pangeohub.units import Duration

# ISO 4217 codes people are likely to bill in; an unknown code is far more often a typo ("EURO", "usd$")
# than a real currency, and a typo would print on every report.
CURRENCIES = ("AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "INR", "JPY", "KRW", "MXN",
              "NOK", "NZD", "PLN", "SEK", "SGD", "USD", "ZAR")


class UsageSection(Section):
    enabled: bool = Field(
        True, description="Record each person's use (CPU, memory, Dask, home and scratch storage, server starts) "
        "per hour in <state_dir>/usage.sqlite, read by `pangeohub usage report`.",
    )
    sample_interval: Duration = Field(
        "1m", description="Time between samples of the compute counters; a report includes the current hour as far "
        "as it has been sampled.",
    )
    port: Port = Field(
        8093, description="Loopback port of the usage service (the sampler, the admin page at /services/usage/ and "
        "the metrics endpoint at /services/usage/metrics, reached through the hub's proxy).",
    )
    storage_interval: Duration = Field(
        "10m", description="Time between measurements of home and scratch sizes (listing scratch costs a request "
        "per 1000 objects, so it is sampled less often than CPU).",
    )

    _port = field_validator("port")(check_port)

    @field_validator("sample_interval", "storage_interval")
    @classmethod
    def _at_least_a_second(cls, value: float) -> float:
        if value < 1:
            raise ValueError("must be at least 1s, e.g. 1m")
        return value


class Prices(Section):
    core_hour: float = Field(0.0, description="Price of one CPU core used for an hour (server or Dask).")
    memory_gb_hour: float = Field(0.0, description="Price of one GB of memory held for an hour.")
    home_gb_month: float = Field(0.0, description="Price of one GB kept in a home for a month (30 days).")
    object_gb_month: float = Field(0.0, description="Price of one GB kept in scratch object storage for a month.")

    @field_validator("core_hour", "memory_gb_hour", "home_gb_month", "object_gb_month", mode="before")
    @classmethod
    def _price(cls, value):
        return _non_negative_number(value)


class CostsSection(Section):
    currency: str = Field("USD", description="ISO 4217 code the prices are in, e.g. USD, EUR, GBP.")
    prices: Prices = Field(default_factory=Prices, description="Prices per unit of use.")
    machine_monthly: float = Field(
        0.0, description="A fixed monthly cost of the machine(s), shared out by each person's share of the CPU "
        "core-hours used in the period (added to the per-unit prices above).",
    )

    @property
    def priced(self) -> bool:
        """Whether any price is set (a money figure would be 0 otherwise)."""
        return bool(self.machine_monthly or any(self.prices.model_dump().values()))

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if value.upper() not in CURRENCIES:
            raise ValueError(f"unknown currency {value!r}; use an ISO 4217 code: {', '.join(CURRENCIES)}")
        return value.upper()

    @field_validator("machine_monthly", mode="before")
    @classmethod
    def _machine(cls, value):
        return _non_negative_number(value)


def _non_negative_number(value):
    """A price: a plain number >= 0 (a quoted "0.05" would hide a typo such as "0,05")."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"a price must be a number such as 0.05, not {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"a price must be zero or more, not {value!r}")
    return float(value)
