"""Several simulated 2030.5 devices at once, each with its own certificate, for demos and tests."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from derms.adapters.ieee2030_5.pki import TestPki
from derms.core.clock import Clock
from derms.core.der import Der
from derms.core.tasks import cancel_and_wait
from derms.sim.device import SimulatedDevice
from derms.sim.protocols.ieee2030_5.client import Sep2Device, Sep2DeviceConfig


class Sep2Fleet:
    """Issues a device certificate per DER (the DER's ``address`` becomes its LFDI) and runs
    one :class:`Sep2Device` per DER against ``base_url``."""

    def __init__(self, pki: TestPki, directory: Path, ca: Path, base_url: str, clock: Clock) -> None:
        self._pki, self._dir, self._ca, self._url, self._clock = pki, directory, ca, base_url, clock
        self.devices: dict[str, Sep2Device] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def enroll(self, der: Der, seed: int = 0) -> Der:
        """Issue ``der`` a certificate; returns the DER with ``address`` = its LFDI (register that)."""
        issued = self._pki.device(f"SIM-{der.id}")
        cert, key = issued.write(self._dir, f"sim-{der.id}", chain=(self._pki.mca,))
        enrolled = replace(der, protocol="ieee2030_5", address=issued.lfdi)
        config = Sep2DeviceConfig(self._url, cert, key, self._ca, issued.lfdi, seed)
        self.devices[der.id] = Sep2Device(
            config, SimulatedDevice(enrolled, self._clock, seed=seed), self._clock
        )
        return enrolled

    async def start(self, cycles: int | None = None) -> None:
        """Start every device's discover-register-poll loop."""
        self._tasks = [asyncio.create_task(d.run(cycles)) for d in self.devices.values()]

    async def wait(self) -> None:
        await asyncio.gather(*self._tasks)

    async def stop(self) -> None:
        await cancel_and_wait(*self._tasks)
        for device in self.devices.values():
            await device.close()
