"""A PV + battery plant behind an IEEE 1815.2 (MESA-DER) DNP3 outstation.

The outstation is dnp3py's MESA-DER outstation (its PICS profile, database and command
handler) on a real TCP socket; this module adds the plant: each step it reads the enabled
modes (binary output status) and setpoints (analog output store), moves the plant model,
and writes the measurements back as analog inputs in transmission units, which creates
class events for the master's event polls. The model is deliberately small and kept
behind :class:`PlantModel` so it can be swapped for ``derms.sim.physics`` when that lands.

dnp3py's TCP outstation runner answers requests but never originates unsolicited
responses; :class:`_ReportingRunner` adds that: once the master has enabled unsolicited
reporting (function 20), pending class events go out in UNSOLICITED_RESPONSE fragments
built by dnp3py's ``Outstation.generate_unsolicited`` (IEEE 1815-2012 4.6.6), one
outstanding until the master confirms it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from importlib.resources import as_file, files

from derms.adapters.dnp3.points import (
    AI_ACTIVE_POWER,
    AI_FREQUENCY,
    AI_REACTIVE_POWER,
    AI_SOC,
    AI_VOLTAGE_A,
    AI_WMAX,
    AO_AGC_W,
    AO_CHARGE_DISCHARGE_W,
    AO_VAR_TARGET,
    AO_WLIM_PCT,
    AO_WLIM_W,
    BO_AGC_ENABLE,
    BO_CHARGE_DISCHARGE_ENABLE,
    BO_CONNECT,
    BO_VAR_ENABLE,
    BO_WLIM_ENABLE,
    PointKind,
    PointMap,
    mesa_der_map,
)
from derms.core.tasks import cancel_and_wait
from dnp3.datalink.builder import build_unconfirmed_user_data
from dnp3.mesa.outstation import MesaOutstation, create_mesa_outstation
from dnp3.outstation.tcp_runner import OutstationTcpRunner
from dnp3.transport.segmenter import Segmenter
from dnp3.transport_io.channel import ChannelError


@dataclass
class PlantModel:
    """PV + battery plant at one point of interconnection (derms sign: + injects).

    Controls (``None`` = mode disabled): ``limit_w`` caps net output (DWMX), ``battery_w``
    sets battery power (DWGC, + discharges), ``target_w`` holds net output with the battery
    (DAGC), ``var`` holds reactive power (DVAR); ``connected`` opens the breaker.
    """

    w_max: float = 5_000_000.0
    pv_available_w: float = 3_000_000.0
    battery_w_max: float = 2_000_000.0
    battery_wh: float = 8_000_000.0
    soc: float = 0.5
    v_v: float = 12_470.0 / 3**0.5
    f_hz: float = 60.0
    limit_w: float | None = None
    battery_w: float | None = None
    target_w: float | None = None
    var: float | None = None
    connected: bool = True
    p_w: float = 0.0
    q_var: float = 0.0

    def step(self, dt_s: float) -> None:
        if not self.connected:
            self.p_w = self.q_var = 0.0
            return
        pv = self.pv_available_w
        battery = self.battery_w or 0.0
        if self.target_w is not None:
            battery = self.target_w - pv
        battery = max(-self.battery_w_max, min(self.battery_w_max, battery))
        if (battery > 0 and self.soc <= 0.0) or (battery < 0 and self.soc >= 1.0):
            battery = 0.0
        cap = min(self.w_max, self.limit_w if self.limit_w is not None else self.w_max)
        if pv + battery > cap:
            pv = max(0.0, cap - battery)
            battery = min(battery, cap - pv)
        self.soc = min(1.0, max(0.0, self.soc - battery * dt_s / 3600.0 / self.battery_wh))
        self.p_w = pv + battery
        self.q_var = self.var or 0.0


class _ReportingRunner(OutstationTcpRunner):
    """dnp3py's TCP outstation runner plus unsolicited reporting on the live connection."""

    report_period_s: float = 0.1

    async def _handle_connection(self, channel: object) -> None:  # type: ignore[override]
        reporter = asyncio.create_task(self._report(channel), name="dnp3-plant-unsolicited")
        try:
            await super()._handle_connection(channel)  # type: ignore[arg-type]
        finally:
            await cancel_and_wait(reporter)

    async def _report(self, channel: object) -> None:
        config = self.outstation.config
        segmenter = Segmenter()
        while True:
            await asyncio.sleep(self.report_period_s)
            response = self.outstation.generate_unsolicited()
            if response is None:
                continue
            try:
                for segment in segmenter.segment(response.to_bytes()):
                    frame = build_unconfirmed_user_data(
                        destination=config.master_address,
                        source=config.address,
                        dir_from_master=False,
                        user_data=segment.to_bytes(),
                    )
                    await channel.write_all(frame.to_bytes())  # type: ignore[attr-defined]
            except ChannelError:
                return


class SimulatedPlant:
    """A :class:`PlantModel` served by dnp3py's MESA-DER outstation on ``host:port``."""

    def __init__(
        self,
        model: PlantModel | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        address: int = 10,
        master_address: int = 1,
        step_s: float = 0.1,
        profile: str = "full",
    ) -> None:
        self.model = model or PlantModel()
        self.step_s = step_s
        self.points: PointMap = mesa_der_map(profile)
        with as_file(files("dnp3.mesa") / "data" / "profiles" / f"{profile}.json") as path:
            self.outstation: MesaOutstation = create_mesa_outstation(
                path, host=host, port=port, address=address, master_address=master_address
            )
        # The breaker (CSWI.Pos) starts closed.
        self.outstation.database.update_binary_output(
            self.points.get(PointKind.BINARY_OUTPUT, BO_CONNECT).index, value=True
        )
        self._runner = _ReportingRunner(outstation=self.outstation.outstation, host=host, port=port)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def port(self) -> int:
        address = self._runner.local_address
        if address is None:
            raise RuntimeError("plant outstation is not listening")
        return address[1]

    async def start(self) -> None:
        self.sync()
        self._tasks.append(asyncio.create_task(self._runner.run(), name="dnp3-plant"))
        for _ in range(500):
            if self._runner.local_address is not None:
                break
            await asyncio.sleep(0.01)
        else:
            raise RuntimeError("plant outstation did not start listening within 5 s")
        self._tasks.append(asyncio.create_task(self._loop(), name="dnp3-plant-step"))

    async def stop(self) -> None:
        await self._runner.stop()
        await cancel_and_wait(*self._tasks)
        self._tasks.clear()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.step_s)
            self.sync(self.step_s)

    def _bo(self, uid: str) -> bool:
        point = self.outstation.database.get_binary_output(
            self.points.get(PointKind.BINARY_OUTPUT, uid).index
        )
        return bool(point is not None and point.value)

    def _ao(self, uid: str) -> float | None:
        point = self.points.get(PointKind.ANALOG_OUTPUT, uid)
        stored = self.outstation.ao_store.get(point.index)
        return None if stored is None else point.to_engineering(stored.value)

    def _ai(self, uid: str, engineering: float) -> None:
        point = self.points.get(PointKind.ANALOG_INPUT, uid)
        self.outstation.database.update_analog_input(point.index, float(point.to_transmission(engineering)))

    def sync(self, dt_s: float = 0.0) -> None:
        """Apply the outstation's control state to the model, step it, publish measurements."""
        m = self.model
        limits = []
        if self._bo(BO_WLIM_ENABLE):
            pct, watts = self._ao(AO_WLIM_PCT), self._ao(AO_WLIM_W)
            if pct is not None and pct > 0:
                limits.append(pct / 100.0 * m.w_max)
            if watts is not None and watts > 0:
                limits.append(watts)
        m.limit_w = min(limits) if limits else None
        m.battery_w = self._ao(AO_CHARGE_DISCHARGE_W) if self._bo(BO_CHARGE_DISCHARGE_ENABLE) else None
        m.target_w = self._ao(AO_AGC_W) if self._bo(BO_AGC_ENABLE) else None
        m.var = self._ao(AO_VAR_TARGET) if self._bo(BO_VAR_ENABLE) else None
        m.connected = self._bo(BO_CONNECT)
        m.step(dt_s)
        self._ai(AI_ACTIVE_POWER, m.p_w)
        self._ai(AI_REACTIVE_POWER, m.q_var)
        self._ai(AI_SOC, m.soc * 100.0)
        self._ai(AI_FREQUENCY, m.f_hz)
        self._ai(AI_VOLTAGE_A, m.v_v)
        self._ai(AI_WMAX, m.w_max)
