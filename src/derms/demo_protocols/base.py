"""What every protocol's demo devices provide: DER records, adapter settings, a way to stop.

A :class:`DeviceGroup` owns N simulated devices of one protocol on loopback. Devices that
*serve* (SunSpec Modbus servers, the DNP3 outstation, CTA-2045 SGDs) are started in
:meth:`DeviceGroup.prepare`, because their DER address is the port they bound. Devices that
*connect* to the platform (2030.5 clients, OpenADR VENs, OCPP charge points) get their
identifiers in :meth:`~DeviceGroup.prepare` and are started in :meth:`~DeviceGroup.connect`,
once the adapter listens.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from pydantic import BaseModel

from derms.adapters.base import Adapter
from derms.core.clock import Clock
from derms.core.der import Capabilities, Der, DerKind
from derms.core.site import Customer, Site

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Placement:
    """One device's place in the demo: its site on a network bus, and a seed for its physics."""

    protocol: str
    index: int
    site: Site
    customer: Customer
    seed: int

    @property
    def der_id(self) -> str:
        return f"proto-{self.protocol}-der-{self.index:03d}"

    def der(self, kind: DerKind, capabilities: Capabilities, address: str) -> Der:
        return Der(
            id=self.der_id,
            site_id=self.site.id,
            kind=kind,
            capabilities=capabilities,
            protocol=self.protocol,
            address=address,
            tenant_id=self.site.tenant_id,
            name=f"{kind.value.replace('_', ' ')} over {self.protocol} {self.index}",
        )


class DeviceGroup(abc.ABC):
    """N simulated devices of one protocol, on loopback, for ``derms demo``."""

    protocol: ClassVar[str]
    clients: ClassVar[bool]
    """True when the devices connect to the adapter (started by :meth:`connect`)."""

    def __init__(self, clock: Clock, speed: float) -> None:
        self.clock = clock
        self.speed = speed
        """Simulated seconds per wall second, for device physics that keep their own time."""
        self._tasks: list[asyncio.Task[Any]] = []

    @abc.abstractmethod
    async def prepare(self, placements: Sequence[Placement]) -> list[Der]:
        """Start serving devices (if the protocol's devices serve) and return their DERs."""

    @abc.abstractmethod
    def settings(self) -> BaseModel:
        """The adapter's settings (listening on port 0 where it listens)."""

    async def connect(self, adapter: Adapter) -> None:  # noqa: B027 - serving devices need nothing
        """Start the devices that connect to the running ``adapter``."""

    async def stop(self) -> None:
        """Stop every device; the default cancels the tasks :meth:`spawn` started."""
        await self.cancel_tasks()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a device loop; a device that dies is logged, never raised into the demo."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_log_death)
        self._tasks.append(task)

    async def cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()


def _log_death(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("demo protocol device stopped", task=task.get_name(), error=repr(task.exception()))
