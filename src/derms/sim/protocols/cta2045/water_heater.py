"""An electric water heater SGD answering a UCM over a CTA-2045-B link on TCP or a serial line.

The tank is :class:`derms.sim.physics.water_heater.WaterHeaters` (one row). DR commands
move its thermostat (CTA-2045-B 10.x intent, offsets after EPRI's water heater field
tests): shed lowers the set point by ``shed_k``, critical peak by ``critical_k``, grid
emergency keeps the element off, load up raises it by ``load_up_k``, advanced load up by
``advanced_k`` until the requested energy has been stored; each lasts the command's
duration (``2·n²`` s) or until End Shed. Operational state and a Get CommodityRead reply
report what the tank does: electricity consumed (W, Wh) and, as energy-storage commodities,
the energy the tank can hold and holds above the inlet temperature (Wh).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import numpy as np

from cta2045 import app
from cta2045.app import AdvancedLoadUp, BasicDR, IntermediateDR
from cta2045.codec import CodecError, DurationType
from cta2045.enums import BasicDRCategory, CommodityCode, OperationalState
from derms.adapters.cta2045.link import LinkEndpoint, LinkError, fd_streams
from derms.adapters.cta2045.messages import (
    COMMODITY,
    INTERMEDIATE_DR,
    AppNakReason,
    CommodityRecord,
    advanced_load_up_reply,
    app_ack,
    app_nak,
    basic,
    commodity_read_reply,
    state_query_response,
)
from derms.core.tasks import cancel_and_wait
from derms.sim.physics.water_heater import CP_WATER, WaterHeaters

logger = logging.getLogger(__name__)

_EVENTS = {
    BasicDRCategory.Shed: "shed",
    BasicDRCategory.Critical_Peak_Event: "critical_peak",
    BasicDRCategory.Grid_Emergency: "grid_emergency",
    BasicDRCategory.Load_Up: "load_up",
}


@dataclass
class SimulatedWaterHeater:
    """One tank and its DR state; :meth:`step` advances it by ``dt_s`` seconds."""

    volume_l: float = 190.0
    element_w: float = 4500.0
    setpoint_c: float = 52.0
    t_tank_c: float = 50.0
    daily_draw_l: float = 0.0
    shed_k: float = 5.5
    critical_k: float = 8.0
    load_up_k: float = 5.5
    advanced_k: float = 10.0
    seed: int = 0
    mode: str = "normal"
    override: bool = False
    """Customer override: the owner opted out, DR commands are acknowledged but ignored."""
    remaining_s: float | None = None
    advanced_wh_left: float = 0.0
    energy_wh: float = 0.0
    p_w: float = 0.0
    tank: WaterHeaters = field(init=False)
    rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        one = np.ones(1)
        self.tank = WaterHeaters(
            volume_l=one * self.volume_l,
            element_w=one * self.element_w,
            ua_w_per_k=one * 2.0,
            setpoint_c=one * self.setpoint_c,
            deadband_k=one * 5.0,
            t_min_c=one * 40.0,
            t_max_c=one * 65.0,
            t_inlet_c=one * 18.0,
            t_ambient_c=one * 21.0,
            daily_draw_l=one * self.daily_draw_l,
            t_tank_c=one * self.t_tank_c,
            on=np.zeros(1, dtype=bool),
            draw_left_l=np.zeros(1),
        )
        self.rng = np.random.default_rng(self.seed)

    @property
    def temperature_c(self) -> float:
        return float(self.tank.t_tank_c[0])

    def command(self, mode: str, duration_s: float | None, advanced_wh: float = 0.0) -> None:
        self.mode, self.remaining_s, self.advanced_wh_left = mode, duration_s, advanced_wh

    def _offset_k(self) -> float:
        if self.override:
            return 0.0
        return {
            "shed": -self.shed_k,
            "critical_peak": -self.critical_k,
            "load_up": self.load_up_k,
            "advanced_load_up": self.advanced_k,
        }.get(self.mode, 0.0)

    def step(self, dt_s: float, local_hour: float = 12.0) -> None:
        if dt_s <= 0:
            return
        self.tank.start_draws(local_hour, dt_s, self.rng)
        allowed = np.array([self.override or self.mode != "grid_emergency"])
        self.p_w = float(self.tank.step(dt_s, np.array([self._offset_k()]), allowed)[0])
        consumed_wh = -self.p_w * dt_s / 3600.0
        self.energy_wh += consumed_wh
        if self.mode == "advanced_load_up":
            self.advanced_wh_left -= consumed_wh
            if self.advanced_wh_left <= 0:
                self.command("normal", None)
        if self.remaining_s is not None:
            self.remaining_s -= dt_s
            if self.remaining_s <= 0:
                self.command("normal", None)

    def operational_state(self) -> OperationalState:
        running = bool(self.tank.on[0])
        if self.override:
            return OperationalState.Running_Opted_Out if running else OperationalState.Idle_Opted_Out
        if self.mode in ("shed", "critical_peak", "grid_emergency"):
            return OperationalState.Running_Curtailed if running else OperationalState.Idle_Curtailed
        if self.mode in ("load_up", "advanced_load_up"):
            return OperationalState.Running_Heightened if running else OperationalState.Idle_Heightened
        return OperationalState.Running_Normal if running else OperationalState.Idle_Normal

    def commodities(self) -> list[CommodityRecord]:
        t = self.tank
        wh_per_k = float(t.volume_l[0]) * CP_WATER / 3600.0
        # Energy above the minimum delivery temperature: what the tank can give before the
        # water is too cool to use (the planner's tank model, derms.orchestration.flexibility).
        capacity = wh_per_k * float(t.t_max_c[0] - t.t_min_c[0])
        stored = max(0.0, wh_per_k * float(t.t_tank_c[0] - t.t_min_c[0]))
        return [
            CommodityRecord(CommodityCode.Electricity_Consumed, round(-self.p_w), round(self.energy_wh)),
            CommodityRecord(CommodityCode.Total_Energy_Storage, 0, round(capacity)),
            CommodityRecord(CommodityCode.Present_Energy_Storage, 0, round(stored)),
        ]


class WaterHeaterSgd:
    """A TCP server on ``host:port`` that is the SGD end of a CTA-2045 link to one tank."""

    def __init__(
        self,
        heater: SimulatedWaterHeater | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        step_s: float = 0.1,
        time_scale: float = 1.0,
        ack_timeout_s: float = 0.5,
    ) -> None:
        self.heater = heater or SimulatedWaterHeater()
        self.host, self._port = host, port
        self.step_s, self.time_scale, self.ack_timeout_s = step_s, time_scale, ack_timeout_s
        self.received: list[object] = []
        self.links: list[LinkEndpoint] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SGD is not listening")
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connected, self.host, self._port)
        self._spawn(self._physics())

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in self.links:
            await link.close()
        await cancel_and_wait(*self._tasks)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def _spawn(self, coro: object) -> None:
        task = asyncio.create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _physics(self) -> None:
        while True:
            await asyncio.sleep(self.step_s)
            self.heater.step(self.step_s * self.time_scale)

    async def customer_override(self, on: bool) -> None:
        """The owner presses override: tell every connected UCM (Basic DR 0x11)."""
        self.heater.override = on
        for link in self.links:
            if not link.closed.is_set():
                await link.send(basic(BasicDRCategory.Customer_Override, int(on)))

    async def attach_serial(self, fd: int) -> LinkEndpoint:
        """Serve the UCM on a serial line too (e.g. the controlling end of a pty)."""
        reader, writer = await fd_streams(fd)
        await self._connected(reader, writer)
        return self.links[-1]

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = LinkEndpoint(reader, writer, name="sgd", ack_timeout_s=self.ack_timeout_s)
        link.start()
        self.links.append(link)
        self._spawn(self._serve(link))

    async def _serve(self, link: LinkEndpoint) -> None:
        while not link.closed.is_set():
            frame = await link.inbox.get()
            try:
                reply = self._answer(frame)
            except CodecError as exc:
                logger.warning("SGD: undecodable message %s: %s", frame.hex(), exc)
                reply = app_nak(AppNakReason.LENGTH_INVALID)
            if reply is not None:
                try:
                    await link.send(reply)
                except LinkError as exc:
                    logger.warning("SGD: reply not delivered: %s", exc)

    def _answer(self, frame: bytes) -> bytes | None:
        if frame[:2] == bytes(INTERMEDIATE_DR) and frame[4:] == bytes([COMMODITY, 0x00]):
            # Get CommodityRead request: the cta2045 decoder only knows the reply.
            self.received.append("commodity_read")
            return commodity_read_reply(self.heater.commodities())
        message, _ = app.decode(frame)
        self.received.append(message)
        heater = self.heater
        match message:
            case BasicDR(category=BasicDRCategory.Operational_State_Query):
                return state_query_response(heater.operational_state())
            case BasicDR(category=BasicDRCategory.End_Shed):
                heater.command("normal", None)
                return app_ack(BasicDRCategory.End_Shed.value)
            case BasicDR(category=category) if category in _EVENTS:
                duration = message.duration
                seconds = (
                    None
                    if duration is None or duration.type is not DurationType.Seconds
                    else duration.seconds
                )
                heater.command(_EVENTS[category], seconds)
                return app_ack(category.value)
            case BasicDR(category=BasicDRCategory.ACK | BasicDRCategory.NAK):
                return None
            case BasicDR(opcode1=opcode1):
                logger.info("SGD: Basic DR opcode 0x%02x not supported", opcode1)
                return app_nak(AppNakReason.OPCODE1_NOT_SUPPORTED)
            case IntermediateDR(
                body=AdvancedLoadUp(opcode2=0x00, duration_minutes=minutes, value=value, units=units)
            ):
                if minutes is None or value is None or units is None:
                    return advanced_load_up_reply()  # a Get: report nothing active
                wh = value * (units.watt_hours if hasattr(units, "watt_hours") and units.watt_hours else 0)
                heater.command("advanced_load_up", minutes * 60.0, float(wh))
                return advanced_load_up_reply()
            case _:
                return app_nak(AppNakReason.OPCODE1_NOT_SUPPORTED)
