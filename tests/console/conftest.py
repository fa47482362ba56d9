"""One drill sandbox for the console tests: a real runtime with a simulated fleet on
mv_oberrhein replaying the heat-event drop, served by uvicorn on a free port, in a thread
with its own event loop (so the tests can drive Playwright's sync API)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import timedelta
from typing import Any

import pytest

from derms.console.sandbox import Sandbox, drill_scenario

N_DERS = 400
DROP_COUNT = 120
DROP_LEAD = timedelta(minutes=40)
"""Simulated time from the start to the mass drop (40 s of wall time at speed 60)."""


class HostedSandbox:
    """A :class:`Sandbox` running in a background event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="console-sandbox", daemon=True)
        self.thread.start()
        self.box: Sandbox = self.call(
            Sandbox.start(n_ders=N_DERS, scenario=drill_scenario(DROP_LEAD, DROP_COUNT), speed=60.0)
        )

    def call(self, coro: Any, timeout: float = 300) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the sandbox's loop thread (to read state between its updates)."""
        future: Future = Future()

        def wrapper() -> None:
            try:
                future.set_result(fn())
            except Exception as exc:  # handed back to the caller
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(wrapper)
        return future.result(30)

    def close(self) -> None:
        self.call(self.box.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="package")
def sandbox() -> Iterator[HostedSandbox]:
    hosted = HostedSandbox()
    yield hosted
    hosted.close()
