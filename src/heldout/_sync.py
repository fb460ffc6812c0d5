"""Running async code from sync callers, on one long-lived event loop.

Judge clients hold connection pools bound to the loop they were first used on, so
every sync entry point (``Evaluator.evaluate``) runs its coroutine on the same
background loop instead of a fresh ``asyncio.run`` each time. This also works inside
notebooks, where a loop is already running in the main thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="heldout-sync-loop", daemon=True
            )
            thread.start()
            _loop = loop
        return _loop


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on the shared background loop and return its result."""
    return asyncio.run_coroutine_threadsafe(coro, _background_loop()).result()
