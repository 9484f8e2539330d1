"""The load test's results: a JSON report, a PNG of latency percentiles over time, and a summary table."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path

import psutil

from pangeohub.ops.loadtest import PHASES, LoadTest

BUCKETS = 20  # time buckets across the run in the plot: a few samples each for a 60-person burst


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: every figure reported is a latency someone had)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def phase_stats(test: LoadTest) -> dict[str, dict]:
    stats = {}
    for phase in PHASES:
        done = [e for j in test.journeys for e in j.events if e[0] == phase]
        ok = [e[2] for e in done if e[3] is None]
        if not done:
            continue
        stats[phase] = {
            "count": len(done), "failures": len(done) - len(ok),
            **{f"p{q}": _round(percentile(ok, q)) for q in (50, 95, 99)},
            "max": _round(max(ok) if ok else None),
        }
    return stats


def api_stats(test: LoadTest) -> dict:
    """The hub API's answer times over the run (only answered requests in the percentiles)."""
    ok = [seconds for _, seconds, error in test.api_samples if error is None]
    return {"request": "GET /hub/api/users", "every": test.plan.api_every, "count": len(test.api_samples),
            "failures": len(test.api_samples) - len(ok),
            **{f"p{q}": _round(percentile(ok, q)) for q in (50, 95, 99)}, "max": _round(max(ok) if ok else None),
            "samples": [{"at": _round(at - test.started), "seconds": _round(seconds), "error": error}
                        for at, seconds, error in test.api_samples]}


def report(test: LoadTest) -> dict:
    plan = test.plan
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(test.started or time.time())),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(),
                    "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                    "loadavg_before": test.load_before, "loadavg_after": test.load_after},
        "plan": {"users": plan.users, "ramp": plan.ramp, "hold": plan.hold, "gateway": plan.gateway},
        "fast_spawn": getattr(test.rt.config.hub, "fast_spawn", False),
        "ok": not test.failures,
        "failures": test.failures,
        "phases": phase_stats(test),
        "hub_api": api_stats(test),
        "journeys": [
            {"user": j.index, "error": j.error,
             "events": [{"phase": p, "at": _round(t - test.started), "seconds": _round(d), "error": e}
                        for p, t, d, e in j.events]}
            for j in test.journeys
        ],
    }


def plot(data: dict, path: Path) -> None:
    """Per phase, p50/p95/p99 of the steps started in each time bucket; failures below, on the same clock."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    events = [e for j in data["journeys"] for e in j["events"]]
    window = max(1.0, max((e["at"] for e in events), default=0) / BUCKETS)
    phases = [p for p in PHASES if any(e["phase"] == p for e in events)]
    api = data.get("hub_api", {}).get("samples", [])
    fig, axes = plt.subplots(len(phases) + 2, 1, figsize=(9, 2.2 * (len(phases) + 2)), sharex=True)
    for ax, phase in zip(axes, phases):
        mine = [e for e in events if e["phase"] == phase and e["error"] is None]
        buckets: dict[int, list[float]] = {}
        for e in mine:
            buckets.setdefault(int(e["at"] // window), []).append(e["seconds"])
        xs = sorted(buckets)
        for q, style in ((50, "-"), (95, "--"), (99, ":")):
            ax.plot([(x + 0.5) * window for x in xs], [percentile(buckets[x], q) for x in xs], style,
                    marker="o", markersize=3, label=f"p{q}")
        ax.scatter([e["at"] for e in mine], [e["seconds"] for e in mine], s=4, alpha=0.3, color="grey")
        ax.set_ylabel(f"{phase} (s)")
        ax.legend(loc="upper right", fontsize="small")
    answered = [a for a in api if a["error"] is None]
    axes[-2].plot([a["at"] for a in answered], [a["seconds"] * 1000 for a in answered], ".-", markersize=3)
    axes[-2].set_ylabel("hub API (ms)")
    axes[-2].set_title("GET /hub/api/users, as an admin's page asks it", fontsize="small")
    failed = sorted([e["at"] for e in events if e["error"] is not None]
                    + [a["at"] for a in api if a["error"] is not None])
    axes[-1].step(failed or [0], list(range(1, len(failed) + 1)) or [0], where="post", color="red")
    axes[-1].set_ylabel("failures")
    axes[-1].set_xlabel("seconds since the first person arrived (by step start)")
    plan = data["plan"]
    fig.suptitle(f"{plan['users']} people, ramp {plan['ramp']:g}s, hold {plan['hold']:g}s: "
                 f"{len(data['failures'])} failures")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(test: LoadTest, out: Path) -> tuple[Path, Path, dict]:
    out.mkdir(parents=True, exist_ok=True)
    data = report(test)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(test.started or time.time()))
    json_path, png_path = out / f"loadtest-{stamp}.json", out / f"loadtest-{stamp}.png"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    plot(data, png_path)
    return json_path, png_path, data


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
