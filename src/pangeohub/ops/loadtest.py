"""``pangeohub loadtest``: N simulated people arriving over a ramp, each doing what a workshop attendee does.

Each person logs in through the form, starts a server, starts a kernel and runs code in it, optionally starts a
Dask cluster through the gateway and computes, stays (``hold``), then stops the server. Meanwhile the hub API is
timed as every page and poll meets it: ``GET /hub/api/users`` through the proxy every ``api_every`` seconds, for
the whole run, arrivals included. Everything goes through usersim, the same API the end-to-end tests and ``pangeohub check`` use. The people are temporary accounts
made in the account store and the hub, and removed afterwards (server, hub user, Linux account and home), also
when the run is interrupted.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from pangeohub.errors import PangeoError
from pangeohub.ops.people import Person, give_back, take_people
from pangeohub.usersim import UserSim

PHASES = ("login", "spawn", "kernel", "execute", "gateway", "stop")
# Small but real: imports numpy in the user's kernel and computes, like a first notebook cell.
CODE = "import numpy as np; print(float(np.arange(1_000_000).sum()))"
EXPECTED = "499999500000.0"


@dataclass
class Plan:
    users: int
    ramp: float
    hold: float = 0.0
    gateway: int = 0
    timeout: float = 300.0
    api_every: float = 2.0

    def validate(self) -> None:
        if self.users < 1:
            raise PangeoError(f"--users is {self.users}; it must be at least 1", "e.g. --users 60")
        if self.ramp < 0 or self.hold < 0:
            raise PangeoError("--ramp and --hold are seconds and cannot be negative", "e.g. --ramp 10 --hold 30")
        if self.api_every <= 0:
            raise PangeoError("--api-every is seconds between two requests and must be above 0", "e.g. --api-every 2")
        if not 0 <= self.gateway <= self.users:
            raise PangeoError(
                f"--gateway is {self.gateway}; it must be between 0 and --users ({self.users})",
                "pass how many of the simulated people also start a Dask cluster",
            )


@dataclass
class Journey:
    """One simulated person's run: their steps (from usersim) and the first error, if any."""

    index: int
    name: str
    events: list = field(default_factory=list)
    error: str | None = None
    phase: str = "waiting"


def gateway_check(plan: Plan, config=None) -> Callable | None:
    """The gateway feature's ``check_gateway(sim)``, or a clear error if ``--gateway`` cannot be honoured:
    the feature is not installed (``pangeohub.gateway.check``), or the config does not enable it."""
    if not plan.gateway:
        return None
    check = None
    for module in ("pangeohub.gateway.check", "pangeohub.gateway"):
        try:
            check = getattr(importlib.import_module(module), "check_gateway", None)
        except ImportError:
            continue
        if check is not None:
            break
    section = getattr(config, "gateway", None) if config is not None else True
    if check is None or not section or not getattr(section, "enabled", True):
        raise PangeoError(
            f"--gateway {plan.gateway}: gateway not configured (Dask Gateway is not installed or not enabled)",
            "run without --gateway, or enable Dask Gateway in the config (gateway.enabled: true) and restart",
        )
    return check


def _mark_failed(events: list, phase: str, error: str) -> None:
    """Record ``error`` on the last step of ``phase`` (or as a step of its own if it never started)."""
    for index in range(len(events) - 1, -1, -1):
        if events[index][0] == phase:
            events[index] = (*events[index][:3], error)
            return
    events.append((phase, time.time(), 0.0, error))


class LoadTest:
    def __init__(self, rt, plan: Plan, on_update: Callable[["LoadTest"], None] = lambda _: None):
        plan.validate()
        self.rt, self.plan, self.on_update = rt, plan, on_update
        self.check_gateway = gateway_check(plan, rt.config)
        tag = secrets.token_hex(2)
        self.journeys = [Journey(i, f"lt{tag}x{i:03d}") for i in range(plan.users)]
        self.people: dict[str, Person] = {}
        self.started = 0.0
        self.load_before: tuple[float, ...] = ()
        self.load_after: tuple[float, ...] = ()
        self.cleanup_problems: list[str] = []
        # (start, seconds, error or None) of each timed GET /hub/api/users
        self.api_samples: list[tuple[float, float, str | None]] = []

    # -- accounts --------------------------------------------------------------------------------------
    def create_users(self) -> None:
        people = take_people(self.rt, [j.name for j in self.journeys], "loadtest")
        for journey, person in zip(self.journeys, people):
            journey.name = person.name  # a site's named test account where the platform cannot make people
        self.people = {person.name: person for person in people}

    def remove_users(self) -> list[str]:
        return give_back(self.rt, list(self.people.values()))

    # -- the run ---------------------------------------------------------------------------------------
    def run(self) -> None:
        self.load_before = os.getloadavg()
        self.create_users()
        try:
            asyncio.run(self._all())
        finally:
            self.load_after = os.getloadavg()
            self.cleanup_problems = self.remove_users()

    async def _all(self) -> None:
        self.started = time.time()
        step = self.plan.ramp / max(self.plan.users - 1, 1)
        finished = asyncio.Event()
        watch = asyncio.create_task(self._watch_hub_api(finished))
        try:
            await asyncio.gather(*(self._person(j, j.index * step) for j in self.journeys))
        finally:
            finished.set()
            await watch

    async def _watch_hub_api(self, finished: asyncio.Event) -> None:
        """Time ``GET /hub/api/users`` as an admin's page does, through the proxy, until everyone is done."""
        import aiohttp

        url = f"{self.rt.local_url}/hub/api/users"
        headers = {"Authorization": f"token {self.rt.secret('hub_admin_token')}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.plan.timeout)) as session:
            while not finished.is_set():
                began = time.time()
                error = None
                try:
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                        if response.status != 200:
                            error = f"HTTP {response.status}"
                except Exception as exc:  # a refused or timed-out request is a sample too
                    error = f"{type(exc).__name__}: {exc}"[:200]
                self.api_samples.append((began, time.time() - began, error))
                try:
                    await asyncio.wait_for(finished.wait(), max(0.0, self.plan.api_every - (time.time() - began)))
                except TimeoutError:
                    pass

    async def _person(self, journey: Journey, delay: float) -> None:
        await asyncio.sleep(delay)
        person = self.people[journey.name]
        async with person.sim(self.rt.local_url, timeout=self.plan.timeout) as sim:
            try:
                await self._steps(journey, sim)
            except Exception as exc:
                journey.error = f"{journey.phase}: {type(exc).__name__}: {exc}"[:500]
                if not any(event[3] for event in sim.events):  # a check after a step, not the step, failed
                    _mark_failed(sim.events, journey.phase, journey.error)
                if journey.phase != "stop":  # leave nothing running; a failure here is already recorded
                    try:
                        await sim.stop_server()
                    except Exception:
                        pass
            finally:
                journey.events = list(sim.events)
                journey.phase = "failed" if journey.error else "done"
                self.on_update(self)

    async def _steps(self, journey: Journey, sim: UserSim) -> None:
        # A named test account has a token already (its password is the site's): it does not log in.
        steps = (("login", sim.login),) if sim.password else ()
        for phase, action in (*steps, ("spawn", sim.start_server)):
            journey.phase = phase
            self.on_update(self)
            await action()
        journey.phase = "kernel"
        self.on_update(self)
        kernel = await sim.start_kernel()
        journey.phase = "execute"
        self.on_update(self)
        result = await sim.timed("execute", sim.execute(kernel, CODE))
        if result.stdout.strip() != EXPECTED:
            raise RuntimeError(f"the kernel answered {result.stdout.strip() or result.error!r}, not {EXPECTED}")
        await sim.stop_kernel(kernel)
        if journey.index < self.plan.gateway:
            journey.phase = "gateway"
            self.on_update(self)
            await sim.timed("gateway", self.check_gateway(sim))
        journey.phase = "hold"
        self.on_update(self)
        await asyncio.sleep(self.plan.hold)
        journey.phase = "stop"
        self.on_update(self)
        await sim.stop_server()

    # -- results ---------------------------------------------------------------------------------------
    @property
    def failures(self) -> list[str]:
        return [f"{j.name}: {j.error}" for j in self.journeys if j.error] + self.cleanup_problems

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for journey in self.journeys:
            counts[journey.phase] = counts.get(journey.phase, 0) + 1
        return counts
