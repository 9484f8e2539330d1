"""dask-gateway's client, fixed for code people run (applied by this directory's ``sitecustomize``).

What it fixes upstream: ``Gateway.__del__`` and ``GatewayCluster.__del__`` call ``close()``, which waits for the
client's event loop. A cluster that failed to start (refused by a limit, say) sits in a reference cycle until the
garbage collector finds it, and the collector runs wherever memory is allocated: when that is the event loop's
own thread, ``close()`` waits for itself and every later Dask Gateway call in the kernel hangs forever. Here a
finaliser that finds itself on its own loop's thread does its closing on a short-lived thread instead, so the
loop goes on and the close completes a moment later.
"""

from __future__ import annotations

import asyncio
import sys
import threading

_FIXED = "_pangeohub_fixed"


def _on_own_loop(obj) -> bool:
    try:
        loop = obj.loop.asyncio_loop
    except Exception:  # a half-built object: the original finaliser copes with it
        return False
    return loop is not None and asyncio._get_running_loop() is loop


def _deferring(original):
    def __del__(self):
        if not sys.is_finalizing() and _on_own_loop(self):
            threading.Thread(target=original, args=(self,), name="dask-gateway-close", daemon=True).start()
            return
        original(self)

    setattr(__del__, _FIXED, True)
    return __del__


def fix(module) -> None:
    """Fix ``dask_gateway.client`` (idempotent)."""
    for cls in (module.Gateway, module.GatewayCluster):
        if not getattr(cls.__del__, _FIXED, False):
            cls.__del__ = _deferring(cls.__del__)
