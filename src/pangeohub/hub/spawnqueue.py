"""First come, first served admission of server starts, in place of JupyterHub's refusals.

Upstream's ``concurrent_spawn_limit`` answers every spawn over the limit with HTTP 429 "Too many users trying
to log in right now. Try again in 60 seconds": in a workshop burst that page is a failed start, and raising
the limit on a small machine turns refusals into start timeouts. The hub's limit is therefore rendered off
(pangeohub.render.hub) and this queue holds the spawns over ``hub.concurrent_spawn_limit`` instead: a spawn
waits here (in ``Spawner.run_pre_spawn_hook``, before upstream's ``start_timeout`` clock starts) until one of
the starts ahead of it ends, in the order the spawns arrived. The waiting person's progress events say their
place and an estimate, from the durations of recent starts.

Admission is bounded separately by how many servers the machine holds (``QueuePolicy.capacity``): a spawn
that would go past it is refused at once with a message saying the hub is full and when to try again.

One queue per hub process (every spawner of the hub shares it); the hub's event loop is single-threaded, so
no lock is needed beyond the order of the waiters' futures. Progress streams poll their place once a second
rather than being woken on every move: with hundreds waiting, waking every stream on every admission would
cost the hub's event loop O(n^2) work per burst.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import os

# Until a start has been measured, estimates assume this many seconds per start (a fork-server start under
# load, benchmarks/README.md): better a rough figure than none.
DEFAULT_START_SECONDS = 3.0
RECENT = 20  # starts the estimate averages over


class HubFull(Exception):
    """The machine holds no more servers; the message is for the person."""


class SpawnQueue:
    def __init__(self, concurrency: int):
        self.concurrency = concurrency
        self.starting: set[str] = set()
        self.waiting: collections.OrderedDict[str, asyncio.Future] = collections.OrderedDict()
        self.durations: collections.deque[float] = collections.deque(maxlen=RECENT)

    def position(self, key: str) -> int | None:
        """1 for the first person waiting; None once admitted (or not queued)."""
        for place, waiting in enumerate(self.waiting, 1):
            if waiting == key:
                return place
        return None

    def start_seconds(self) -> float:
        return sum(self.durations) / len(self.durations) if self.durations else DEFAULT_START_SECONDS

    def estimate(self, key: str) -> float:
        """Seconds until ``key`` is admitted: the starts ahead of it, ``concurrency`` at a time."""
        place = self.position(key)
        if place is None:
            return 0.0
        rounds = (place - 1) // self.concurrency + 1
        return rounds * self.start_seconds()

    def _admit_next(self) -> None:
        while self.waiting and len(self.starting) < self.concurrency:
            key, future = self.waiting.popitem(last=False)
            if not future.done():
                self.starting.add(key)
                future.set_result(None)

    async def enter(self, key: str) -> None:
        """Return once ``key`` may start. Cancelled while waiting (the person left), it loses its place and
        takes nobody else's."""
        if key in self.starting or key in self.waiting:
            raise RuntimeError(f"{key} is already starting or waiting")
        if len(self.starting) < self.concurrency and not self.waiting:
            self.starting.add(key)
            return
        future = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        try:
            await future
        except BaseException:
            if self.waiting.pop(key, None) is None and future.done() and not future.cancelled():
                self.leave(key)  # admitted in the same instant it was cancelled: pass the slot on
            raise

    def leave(self, key: str, seconds: float | None = None) -> None:
        """``key``'s start ended (``seconds`` long, when it ran to an end that tells how long starts take)."""
        if key in self.starting:
            self.starting.discard(key)
            if seconds is not None:
                self.durations.append(seconds)
            self._admit_next()
        elif (future := self.waiting.pop(key, None)) is not None:
            future.cancel()


def machine_capacity(memory_per_person: int, reserved: int) -> int:
    """Servers this machine's memory holds: what is left after ``reserved`` for the platform's own services,
    divided by what one person needs (docs/capacity.md)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return max(1, (total - reserved) // memory_per_person)


def full_message(active: int, capacity: int, retry_after: float, now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    at = (now + datetime.timedelta(seconds=retry_after)).strftime("%H:%M UTC")
    return (f"The hub is full: {active - 1} servers are running, the most this machine holds is {capacity} "
            f"(hub.max_servers). Please try again at {at} (in about {round(retry_after / 60)} minutes), "
            "when others will have stopped; nothing of yours was lost.")
