"""Stopping asyncio tasks."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | asyncio.Future[Any] | None) -> None:
    """Cancel every task given (None is skipped) and wait until each has finished; their
    ``CancelledError`` is absorbed, any other exception propagates."""
    live = [t for t in tasks if t is not None]
    for task in live:
        task.cancel()
    for task in live:
        with contextlib.suppress(asyncio.CancelledError):
            await task
