"""The spawner's side of the spawn queue (pangeohub.hub.spawnqueue): wait for a turn, say where one stands.

The wait happens in ``run_pre_spawn_hook``: JupyterHub's ``User.spawn`` calls it after marking the spawn
pending (so the spawn page and the progress API already follow it) and before it starts the
``start_timeout`` clock around ``Spawner.start``, so time in the queue never turns into a start timeout.
Stopping a server that is still waiting (the API's DELETE, the home page's stop button) cancels the wait:
the person loses their place and nobody else's moves back. The place is given back when ``start`` ends
(``PlatformSpawner.start``), not in ``stop``: a start may stop and retry its own server (ProvenStart).
"""

from __future__ import annotations

import asyncio
import inspect
import time

from tornado import web
from traitlets import HasTraits

from pangeohub.hub.spawnqueue import HubFull, SpawnQueue, full_message

# How soon a person told "the hub is full" is told to come back: servers idle this long are stopped by the
# idle culler at the latest when it runs (gateway.server_idle_timeout, 1h by default), and people leave
# sooner than that at the end of an exercise; a quarter of an hour is a useful answer, not a promise.
RETRY_AFTER = 15 * 60.0


class QueuedStart(HasTraits):
    _queue: SpawnQueue | None = None  # class attribute: one queue for the whole hub process
    _queue_admitted: float | None = None

    @property
    def spawn_queue(self) -> SpawnQueue:
        cls = QueuedStart
        limit = self.runtime.config.hub.concurrent_spawn_limit
        if cls._queue is None:
            cls._queue = SpawnQueue(limit)
        cls._queue.concurrency = limit
        return cls._queue

    @property
    def _queue_key(self) -> str:
        return f"{self.user.name}:{self.name}"

    def server_capacity(self) -> int | None:
        """Most servers that may run at once; None: no bound (the target's scheduler queues, e.g. Slurm)."""
        return self.runtime.config.hub.max_servers

    def _check_capacity(self) -> None:
        capacity = self.server_capacity()
        users = (self.user.settings or {}).get("users")
        if capacity is None or users is None:
            return
        active = users.count_active_users()["active"]  # counts this spawn, pending since User.spawn began
        if active > capacity:
            raise HubFull(full_message(active, capacity, RETRY_AFTER))

    async def run_pre_spawn_hook(self):
        try:
            self._check_capacity()
        except HubFull as full:
            self.log.warning("Refusing spawn of %s: %s", self._queue_key, full)
            # 503 with the reason: the spawn page shows the message itself, and clients may honour Retry-After.
            error = web.HTTPError(503, str(full))
            error.reason = "Hub full"
            error.headers = {"Retry-After": str(int(RETRY_AFTER))}
            raise error from None
        queue = self.spawn_queue
        waited = time.monotonic()
        try:
            await queue.enter(self._queue_key)
        except asyncio.CancelledError:
            # The person stopped their waiting server. Upstream's User.spawn clears _start_pending only on an
            # Exception, and a cancellation is not one: the spawner would stay "pending" for good (counted
            # active, and refusing the person's next start). Nothing was started, so there is nothing else.
            self._start_pending = False
            raise
        self._queue_admitted = time.monotonic()
        if self._queue_admitted - waited > 0.5:
            self.log.info("%s waited %.1f s in the spawn queue", self._queue_key, self._queue_admitted - waited)
        try:
            result = super().run_pre_spawn_hook()  # upstream's is synchronous, and may return an awaitable
            return await result if inspect.isawaitable(result) else result
        except BaseException:
            self.leave_spawn_queue(completed=False)
            raise

    def leave_spawn_queue(self, completed: bool = True) -> None:
        """The start ended (or never will): its place goes to the next person. Safe to call twice."""
        admitted, self._queue_admitted = self._queue_admitted, None
        seconds = time.monotonic() - admitted if completed and admitted is not None else None
        self.spawn_queue.leave(self._queue_key, seconds)

    async def progress(self):
        queue, shown = self.spawn_queue, None
        while (place := queue.position(self._queue_key)) is not None:
            estimate = queue.estimate(self._queue_key)
            if (place, round(estimate)) != shown:
                shown = (place, round(estimate))
                yield {"progress": 1, "message": f"Waiting to start: you are number {place} in the queue "
                       f"(first come, first served); your server should start in about {_human(estimate)}."}
            await asyncio.sleep(1)
        async for event in super().progress():
            yield event


def _human(seconds: float) -> str:
    if seconds < 90:
        return f"{max(5, round(seconds / 5) * 5)} seconds"
    return f"{round(seconds / 60)} minutes"
