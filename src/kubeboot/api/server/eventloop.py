"""Which event loop the server's processes run on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["loop_factory"]


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (a dependency except on Windows), else asyncio's loop.

    Why: under a join storm the event loop's own work (socket reads, TLS records, callbacks)
    is a large share of the server's CPU and uvloop does it in C: 50 -> 82-90 joins/s and
    8.7-10.2 -> 7.3-8.4 ms server CPU per join (docs/performance.md). Optional because it
    is not available on Windows.
    """
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
