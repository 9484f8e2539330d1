"""``pangeohub check``: a synthetic person uses the platform end to end, through its public surfaces.

Each phase is timed and reported; the temporary user is removed whatever happens. Features add phases by
appending to ``PHASES`` (a name and an ``async (ctx) -> str`` returning a one-line detail).
"""

from __future__ import annotations

import secrets
import time
import traceback
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from pangeohub.errors import PangeoError
from pangeohub.ops.people import Person, give_back, take_people
from pangeohub.usersim import SimError, UserSim, run_sync

IMPORTS = "import xarray, dask, zarr, intake, fsspec"


@dataclass
class CheckContext:
    rt: object
    person: Person
    sim: UserSim | None = None
    kernel: str | None = None
    notes: dict = field(default_factory=dict)


async def _login(ctx: CheckContext) -> str:
    if not ctx.person.temporary:
        return f"skipped: {ctx.person.name} is a site account whose password is the site's; it uses an API token"
    await ctx.sim.login()
    return f"logged in as {ctx.person.name}"


async def _spawn(ctx: CheckContext) -> str:
    events = await ctx.sim.start_server()
    return f"server ready ({len(events)} progress events)"


async def _kernel(ctx: CheckContext) -> str:
    ctx.kernel = await ctx.sim.start_kernel()
    return f"kernel {ctx.kernel[:8]} started"


async def _imports(ctx: CheckContext) -> str:
    out = await _expect(ctx, f"{IMPORTS}\nprint(xarray.__version__, dask.__version__, zarr.__version__)")
    return "xarray {} dask {} zarr {}".format(*out.split())


async def _home(ctx: CheckContext) -> str:
    token = secrets.token_hex(8)
    code = (
        "import os, pathlib\n"
        f"p = pathlib.Path.home() / '.pangeohub-check'\n"
        f"p.write_text({token!r})\n"
        "print(p.read_text(), oct(os.stat(pathlib.Path.home()).st_mode & 0o777))\n"
        "p.unlink()\n"
    )
    value, mode = (await _expect(ctx, code)).split()
    if value != token:
        raise SimError(f"read back {value!r} from the home, wrote {token!r}")
    if mode != "0o700":
        raise SimError(f"the home is {mode}, expected private (0o700): other people can list it; make homes 0700 "
                       "(with a site's accounts, the site's setting)")
    return "wrote and read a file in the private home"


async def _scratch(ctx: CheckContext) -> str:
    if ctx.rt.config.storage.mode == "off":
        return "skipped: storage.mode is off"
    token = secrets.token_hex(8)
    code = (
        "import os, fsspec\n"
        "url = os.environ['PANGEO_SCRATCH'] + '.pangeohub-check'\n"
        f"with fsspec.open(url, 'w') as f: f.write({token!r})\n"
        "with fsspec.open(url) as f: print(f.read().decode(), url)\n"
        "fsspec.core.url_to_fs(url)[0].rm(url)\n"
    )
    value, url = (await _expect(ctx, code)).split()
    if value != token:
        raise SimError(f"read back {value!r} from {url}, wrote {token!r}")
    return f"wrote, read and deleted {url}"


async def _gateway(ctx: CheckContext) -> str:
    if not ctx.rt.config.gateway.enabled:
        return "skipped: gateway.enabled is false"
    from pangeohub.gateway.check import check_gateway

    return await check_gateway(ctx.sim)


async def _isolation(ctx: CheckContext) -> str:
    from pangeohub.ops.check_isolation import isolation_phase

    return await isolation_phase(ctx)


async def _stop(ctx: CheckContext) -> str:
    await ctx.sim.stop_kernel(ctx.kernel)
    await ctx.sim.stop_server()
    return "server stopped"


async def _expect(ctx: CheckContext, code: str) -> str:
    out = await ctx.sim.execute(ctx.kernel, code)
    if not out.ok:
        raise SimError(f"{out.error}\n{out.stderr[-500:]}")
    return out.stdout.strip()


Phase = tuple[str, Callable[[CheckContext], Awaitable[str]]]
PHASES: list[Phase] = [
    ("login", _login),
    ("spawn", _spawn),
    ("kernel", _kernel),
    ("imports", _imports),
    ("home", _home),
    ("scratch", _scratch),
    ("gateway", _gateway),
    ("isolation", _isolation),
    ("stop", _stop),
]


def full_phases() -> list[Phase]:
    """``--full`` adds the scientist's journey (the quickstart notebook) before the server stops."""
    from pangeohub.ops.journey import journey_phase

    return PHASES[:-1] + [("journey", journey_phase)] + PHASES[-1:]


def run_check(rt, echo=print, full: bool = False) -> dict:
    """Run every phase; returns {"ok": bool, "user": name, "phases": [{name, ok, seconds, detail}]}."""
    from pangeohub.services.supervisor import supervisor_pid

    if supervisor_pid(rt) is None:
        raise PangeoError("pangeohub is not running", "start it with `pangeohub up --detach`")
    # Marked temporary, with this process as its owner: if the check is killed, the next `up` releases it.
    people = take_people(rt, [f"check-{secrets.token_hex(3)}"], "pangeohub check")
    ctx = CheckContext(rt=rt, person=people[0])
    report = {"ok": True, "user": ctx.person.name, "phases": []}
    try:
        run_sync(_run_phases(ctx, report, echo, full_phases() if full else PHASES))
    finally:
        problems = give_back(rt, people)
        if problems:
            raise PangeoError("the check could not give back its test person:\n" + "\n".join(problems),
                              "the next `pangeohub up` releases what is left")
    if echo:
        total = sum(p["seconds"] for p in report["phases"])
        echo(f"{'PASS' if report['ok'] else 'FAIL'}  ({total:.1f}s in all)")
    return report


async def _run_phases(ctx: CheckContext, report: dict, echo, phases: list[Phase]) -> None:
    async with ctx.person.sim(ctx.rt.local_url, timeout=900) as sim:
        ctx.sim = sim
        await run_phase_list(ctx, report, echo, phases)


async def run_phase_list(ctx, report: dict, echo, phases: list[Phase]) -> None:
    """Run ``phases`` in order, each timed and reported (to ``report`` and ``echo``); stop at the first failure."""
    for phase, func in phases:
        started = time.perf_counter()
        try:
            detail, ok = await func(ctx), True
        except Exception as exc:  # report every failure as a failed phase, never as a crash
            detail, ok = f"{type(exc).__name__}: {exc}" if str(exc) else traceback.format_exc(limit=2), False
        seconds = time.perf_counter() - started
        report["phases"].append({"name": phase, "ok": ok, "seconds": round(seconds, 3), "detail": detail})
        if echo:
            echo(f"  {'ok  ' if ok else 'FAIL'} {phase:<10} {seconds:6.2f}s  {detail}")
        if not ok:
            report["ok"] = False
            return
