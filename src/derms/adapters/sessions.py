"""Adapters that hold one long-running session per registered device (DNP3, CTA-2045).

A session connects to its device, polls it and reconnects on failure in :meth:`DeviceSession.run`
until it is cancelled. :class:`SessionAdapter` owns the session life cycle (launched on
``start`` or on registration once started, cancelled and closed on ``stop`` or when the device
is registered again) and the :class:`~derms.adapters.windows.CommandWindows` that hold the
protocol's commands over their window, so each protocol only writes its session and delivery.
"""

from __future__ import annotations

import abc
import asyncio

from derms.adapters.base import Adapter, AdapterContext
from derms.adapters.windows import CommandWindows
from derms.core.der import Der
from derms.core.errors import NotFound
from derms.core.tasks import cancel_and_wait


class DeviceSession(abc.ABC):
    """The connection to one device, run as a task by its :class:`SessionAdapter`."""

    def __init__(self, der: Der) -> None:
        self.der = der
        self.task: asyncio.Task[None] | None = None
        self.online = False

    @abc.abstractmethod
    async def run(self) -> None:
        """Connect, poll and reconnect until cancelled."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release what :meth:`run` left open after it was cancelled (idempotent)."""


class SessionAdapter[S: DeviceSession](Adapter):
    """Base of adapters that keep a :class:`DeviceSession` per registered device."""

    def __init__(self, context: AdapterContext) -> None:
        super().__init__(context)
        self.sessions: dict[str, S] = {}
        self.windows = CommandWindows(context)
        self._started = False

    @abc.abstractmethod
    def open_session(self, der: Der) -> S:
        """A new (not yet running) session for ``der``; raises ValueError on a bad address."""

    async def start(self) -> None:
        self._started = True
        for session in self.sessions.values():
            self._launch(session)

    async def stop(self) -> None:
        self._started = False
        await self.windows.close()
        for session in self.sessions.values():
            await self._halt(session)

    async def register_device(self, der: Der) -> None:
        session = self.open_session(der)
        old = self.sessions.get(der.id)
        if old is not None:
            await self._halt(old)
        self.sessions[der.id] = session
        if self._started:
            self._launch(session)

    def session(self, der_id: str) -> S:
        """The session of a registered device; raises NotFound otherwise."""
        session = self.sessions.get(der_id)
        if session is None:
            raise NotFound(f"{self.protocol} device", der_id)
        return session

    def _launch(self, session: S) -> None:
        session.task = asyncio.create_task(session.run(), name=f"{self.protocol}:{session.der.id}")

    @staticmethod
    async def _halt(session: S) -> None:
        await cancel_and_wait(session.task)
        session.task = None
        await session.close()
