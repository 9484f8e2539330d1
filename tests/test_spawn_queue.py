"""Spawns over hub.concurrent_spawn_limit wait in a first come, first served queue instead of JupyterHub's 429;
past hub.max_servers a spawn is refused with "the hub is full" and a time to come back.

The queue itself is checked on its own (plain asyncio, no platform); then a real platform with one start at a
time shows a burst where everyone starts, the queue's places in the progress events, a person who leaves the
queue, and a full hub.
"""

from __future__ import annotations

import asyncio
import datetime
import json

import pytest
from harness import Platform, require_root

from pangeohub.hub.spawnqueue import SpawnQueue, full_message, machine_capacity
from pangeohub.usersim import SimError, run_sync


async def _arrive(queue: SpawnQueue, names: list[str], admitted: list[str]) -> dict[str, asyncio.Task]:
    async def one(name):
        await queue.enter(name)
        admitted.append(name)

    tasks = {}
    for name in names:
        tasks[name] = asyncio.create_task(one(name))
        await asyncio.sleep(0)  # each arrives after the one before: the order the queue must keep
    await asyncio.sleep(0)
    return tasks


def test_first_come_first_served_with_places_and_estimates():
    async def go():
        queue, admitted = SpawnQueue(concurrency=2), []
        await _arrive(queue, [f"p{i}" for i in range(7)], admitted)
        assert admitted == ["p0", "p1"]
        assert [queue.position(f"p{i}") for i in range(7)] == [None, None, 1, 2, 3, 4, 5]
        queue.leave("p0", seconds=4.0)
        queue.leave("p1", seconds=2.0)
        await asyncio.sleep(0)
        assert admitted == ["p0", "p1", "p2", "p3"]
        # Two starts at a time, 3 s each on average: the 3rd in line starts after two rounds.
        assert queue.position("p6") == 3 and queue.estimate("p6") == pytest.approx(6.0)
        assert queue.estimate("p4") == pytest.approx(3.0)
        for name in ["p2", "p3", "p4", "p5", "p6"]:
            queue.leave(name, seconds=1.0)
            await asyncio.sleep(0)
        assert admitted == [f"p{i}" for i in range(7)]
        assert not queue.starting and not queue.waiting

    asyncio.run(go())


def test_leaving_the_queue_loses_that_place_only():
    async def go():
        queue, admitted = SpawnQueue(concurrency=1), []
        tasks = await _arrive(queue, ["a", "b", "c", "d"], admitted)
        tasks["c"].cancel()  # c stops their pending server while waiting
        await asyncio.sleep(0)
        assert tasks["c"].cancelled()
        assert queue.position("d") == 2 and queue.position("c") is None
        for name in ["a", "b", "d"]:
            queue.leave(name)
            await asyncio.sleep(0)
        assert admitted == ["a", "b", "d"]
        assert not queue.starting and not queue.waiting

    asyncio.run(go())


def test_a_waiter_cancelled_as_it_is_admitted_passes_its_turn_on():
    async def go():
        queue, admitted = SpawnQueue(concurrency=1), []
        tasks = await _arrive(queue, ["a", "b", "c"], admitted)
        queue.leave("a")  # admits b ...
        tasks["b"].cancel()  # ... which leaves before it could run
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert admitted == ["a", "c"] and queue.starting == {"c"}

    asyncio.run(go())


def test_capacity_and_full_message():
    total = __import__("os").sysconf("SC_PAGE_SIZE") * __import__("os").sysconf("SC_PHYS_PAGES")
    assert machine_capacity(total // 10, 0) == 10
    assert machine_capacity(1 << 30, total) == 1  # never below one
    now = datetime.datetime(2026, 12, 7, 9, 0, tzinfo=datetime.timezone.utc)
    message = full_message(active=41, capacity=40, retry_after=900, now=now)
    assert "hub is full" in message and "40 servers are running" in message and "09:15 UTC" in message


@pytest.fixture(scope="module")
def queued_platform():
    if reason := require_root():
        pytest.skip(reason)
    hub = Platform(extra={"hub": {"concurrent_spawn_limit": 1, "max_servers": 6}})
    try:
        hub.up()
        yield hub
    finally:
        hub.close()


def test_burst_queues_everyone_and_a_full_hub_says_so(queued_platform):
    hub = queued_platform
    names = [hub.add_user()[0] for _ in range(7)]
    starters, leaver, late = names[:5], names[5], names[6]

    async def start(name):
        async with hub.sim(name, timeout=240) as user:
            await user.login()
            return await user.start_server()

    async def leave_once_queued(name):
        async with hub.sim(name, timeout=240) as user:
            await user.login()
            url = f"{user.base}/hub/api/users/{name}/server"
            # The API's POST waits up to slow_spawn_timeout (10 s) before it answers: follow progress meanwhile.
            post = asyncio.create_task(user._json("POST", url, json={}, expect=(201, 202)))
            seen = None
            while seen is None:
                await asyncio.sleep(0.2)
                async with user.session.get(f"{url}/progress", headers=user._auth) as resp:
                    if resp.status != 200:
                        continue
                    async for raw in resp.content:
                        if b"in the queue" in raw:
                            seen = json.loads(raw.decode().strip()[5:])["message"]
                            break
                        if b'"ready": true' in raw or b'"failed": true' in raw:
                            raise AssertionError(f"the leaver was never queued: {raw!r}")
            await user.stop_server()
            await asyncio.gather(post, return_exceptions=True)
            return seen, await user.hub_user()

    async def burst():
        tasks = [asyncio.create_task(start(name)) for name in starters]
        await asyncio.sleep(0.5)  # the leaver arrives behind them
        left = await leave_once_queued(leaver)
        return await asyncio.gather(*tasks), left

    events_per_person, (leaver_place, left) = run_sync(burst())
    # Everyone who stayed started (upstream would have refused all but one with 429), and was told a place.
    messages = [event.get("message", "") for events in events_per_person for event in events]
    assert not any("Too many users" in m for m in messages)
    places = [m for m in messages if "in the queue" in m] + [leaver_place]
    assert all("number" in m and "should start in about" in m for m in places)
    assert not left.get("servers"), left  # the leaver's server was never started

    # Five running; a sixth fits (the leaver's place was not kept), a seventh does not.
    run_sync(start(leaver))
    with pytest.raises(SimError) as refused:
        run_sync(start(late))
    text = str(refused.value)
    assert "hub is full" in text and "try again at" in text, text
