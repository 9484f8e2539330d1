"""The report's PNG: stacked daily bars of CPU core-hours (server and Dask) per person or group."""

from __future__ import annotations

from datetime import datetime, timezone

from pangeohub.usage.store import HOUR


def daily_plot(store, start: float, end: float, by: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    from pangeohub.usage.report import aggregate

    days = [row["day"] for row in aggregate(store, start, end, "day")]
    series: dict[str, list[float]] = {}
    for index, day in enumerate(days):
        midnight = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp()
        for row in aggregate(store, max(start, midnight), min(end, midnight + 86400), by):
            values = series.setdefault(row[by], [0.0] * len(days))
            values[index] = row["server_cpu_seconds"] / HOUR + row["dask_core_hours"]
    fig, ax = plt.subplots(figsize=(max(6, len(days) * 0.4), 4))
    bottom = [0.0] * len(days)
    for key in sorted(series):
        ax.bar(days, series[key], bottom=bottom, label=key)
        bottom = [b + v for b, v in zip(bottom, series[key])]
    ax.set_ylabel("CPU core-hours (server + Dask)")
    ax.set_title(f"Daily use per {by}")
    if series:
        ax.legend(fontsize="small", ncol=2)
    ax.tick_params(axis="x", labelrotation=60)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
