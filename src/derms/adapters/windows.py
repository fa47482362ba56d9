"""Command windows for protocols without native scheduling (DNP3, CTA-2045).

A :class:`NativeCommand` holds from ``start`` to ``end``. DNP3 and CTA-2045 have no
start or end time in their commands, so the adapter keeps the window itself on the
context clock: it delivers at ``start`` (at once when already started), reverts at
``end`` and reports COMPLETED, and when a later command takes the same control slot of a
device it stops tracking the earlier one and reports it SUPERSEDED (the same life cycle as
the reference simulated adapter).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime

from derms.adapters.base import AdapterContext, NativeCommand
from derms.core.dispatch import CommandState
from derms.core.tasks import cancel_and_wait

type Deliver = Callable[[], Awaitable[bool]]
"""Sends the command and reports its states; True when the device took it."""
type Revert = Callable[[], Awaitable[str | None]]
"""Undoes the command at its end; returns an error text, or None on success."""


@dataclass
class _Window:
    command: NativeCommand
    slot: Hashable
    revert: Revert | None
    task: asyncio.Task[None] | None = field(default=None)


class CommandWindows:
    def __init__(self, context: AdapterContext) -> None:
        self.context = context
        self._active: dict[str, _Window] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(
        self, command: NativeCommand, slot: Hashable, deliver: Deliver, revert: Revert | None
    ) -> None:
        now = self.context.clock.now()
        if command.end <= now:
            await self._report(command, CommandState.FAILED, "the command's window ended before delivery")
            return
        window = _Window(command, (command.der_id, slot), revert)
        if command.start <= now:
            await self._run(window, deliver)
        else:
            self._spawn(self._later(window, deliver))

    async def close(self) -> None:
        await cancel_and_wait(*self._tasks)
        self._active.clear()

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _later(self, window: _Window, deliver: Deliver) -> None:
        await self._sleep_until(window.command.start)
        await self._run(window, deliver)

    async def _run(self, window: _Window, deliver: Deliver) -> None:
        if not await deliver():
            return
        for cid, other in list(self._active.items()):
            if other.slot == window.slot:
                del self._active[cid]
                if other.task is not None:
                    other.task.cancel()
                await self._report(
                    other.command, CommandState.SUPERSEDED, f"superseded by {window.command.command_id}"
                )
        self._active[window.command.command_id] = window
        window.task = self._spawn(self._finish(window))

    async def _finish(self, window: _Window) -> None:
        await self._sleep_until(window.command.end)
        if self._active.get(window.command.command_id) is not window:
            return
        del self._active[window.command.command_id]
        error = await window.revert() if window.revert is not None else None
        if error is None:
            await self._report(window.command, CommandState.COMPLETED, "window ended")
        else:
            await self._report(window.command, CommandState.FAILED, f"could not end the command: {error}")

    async def _sleep_until(self, when: datetime) -> None:
        remaining = (when - self.context.clock.now()).total_seconds()
        if remaining > 0:
            await self.context.clock.sleep(remaining)

    async def _report(self, command: NativeCommand, state: CommandState, detail: str) -> None:
        await self.context.report_command(command.command_id, command.der_id, state, detail)
