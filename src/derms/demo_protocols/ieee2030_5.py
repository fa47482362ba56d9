"""Batteries and PV inverters behind IEEE 2030.5 clients, over mutual TLS to the CSIP server.

A throw-away test PKI (SERCA, MCA, device and server certificates per the CSIP certificate
profile, :mod:`derms.adapters.ieee2030_5.pki`) is written to a temporary directory; each
device's DER is registered out of band by the LFDI of its certificate (IEEE 2030.5-2018
6.3.4), so the server knows it before its first TLS handshake.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from derms.adapters.base import Adapter
from derms.adapters.ieee2030_5 import Ieee2030_5Adapter, Ieee2030_5Settings
from derms.adapters.ieee2030_5.pki import TestPki
from derms.core.clock import Clock
from derms.core.der import Capabilities, Der, DerKind
from derms.demo_protocols.base import DeviceGroup, Placement
from derms.sim.device import SimulatedDevice
from derms.sim.protocols.ieee2030_5 import Sep2Device, Sep2DeviceConfig

NOT_BEFORE = datetime(2025, 1, 1, tzinfo=UTC)
"""Certificates are valid from here (TLS checks wall time) to 2030.5's 'indefinite' end."""
BATTERY = Capabilities(w_max=5_000.0, w_max_consume=5_000.0, va_max=5_000.0, wh_max=13_500.0)
PV = Capabilities(w_max=7_600.0, va_max=7_600.0, var_max_inject=3_300.0, var_max_absorb=3_300.0)


class Ieee2030_5Devices(DeviceGroup):
    protocol = "ieee2030_5"
    clients = True

    def __init__(self, clock: Clock, speed: float) -> None:
        super().__init__(clock, speed)
        self._dir = tempfile.TemporaryDirectory(prefix="derms-demo-2030.5-")
        self.directory = Path(self._dir.name)
        self.pki = TestPki(NOT_BEFORE, organisation="derms demo")
        self.ca = self.directory / "serca.pem"
        self.ca.write_bytes(self.pki.serca.cert_pem)
        self.server = self.pki.server().write(self.directory, "server")
        self.devices: list[tuple[Der, Placement, Path, Path]] = []
        self.clients_running: list[Sep2Device] = []

    async def prepare(self, placements: Sequence[Placement]) -> list[Der]:
        for place in placements:
            issued = self.pki.device(f"DEMO-{place.index:04d}")
            cert, key = issued.write(self.directory, place.der_id, chain=(self.pki.mca,))
            kind, caps = (
                (DerKind.HOME_BATTERY, BATTERY) if place.index % 2 == 0 else (DerKind.PV_INVERTER, PV)
            )
            self.devices.append((place.der(kind, caps, issued.lfdi), place, cert, key))
        return [der for der, *_ in self.devices]

    def settings(self) -> Ieee2030_5Settings:
        cert, key = self.server
        return Ieee2030_5Settings(port=0, cert_file=cert, key_file=key, ca_file=self.ca, tenant_id="utility")

    async def connect(self, adapter: Adapter) -> None:
        assert isinstance(adapter, Ieee2030_5Adapter)
        for der, place, cert, key in self.devices:
            config = Sep2DeviceConfig(adapter.url, cert, key, self.ca, der.address, seed=place.seed)
            device = Sep2Device(
                config, SimulatedDevice(der, self.clock, site=place.site, seed=place.seed), self.clock
            )
            self.clients_running.append(device)
            self.spawn(device.run(), f"2030.5 {der.id}")

    async def stop(self) -> None:
        await self.cancel_tasks()
        for device in self.clients_running:
            await device.close()
        self.clients_running.clear()
        self._dir.cleanup()
