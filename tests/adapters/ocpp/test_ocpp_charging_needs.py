"""EV charging needs through the OCPP adapter's real websocket: 2.0.1 NotifyEVChargingNeeds
(K15) becomes device state, reduced by the energy metered since; 1.6 has none."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from derms.adapters.ocpp import OcppAdapter
from derms.core.clock import SystemClock
from derms.core.der import Capabilities, Der, DerKind
from derms.core.device_state import decode_device_states
from derms.fleet.state import FleetState
from derms.sim.protocols.ocpp import SimChargePoint
from tests.adapters.ocpp.csms_rig import PASSWORDS, Seen


def charger(address: str) -> Der:
    return Der(id="ev", site_id="s", kind=DerKind.EV_CHARGER, protocol="ocpp", address=address, tenant_id="t",
               capabilities=Capabilities(w_max_consume=11_000, phases=3, v_nom=230))  # fmt: skip


def needs(seen: Seen) -> list[dict]:
    return [m.data for m in seen.messages if m.subject == "der.state.ocpp"]


async def test_notified_need_is_published_and_metered_down(csms: tuple[OcppAdapter, Seen]) -> None:
    adapter, seen = csms
    der = charger("SIM201/1")
    await adapter.register_device(der)
    clock = SystemClock()
    departure = (clock.now() + dt.timedelta(hours=6)).replace(microsecond=0)
    sim = SimChargePoint(
        "SIM201",
        f"ws://127.0.0.1:{adapter.csms.port}/ocpp",
        clock,
        version="2.0.1",
        password=PASSWORDS["SIM201"],
        meter_interval_s=0.1,
        need_wh=20_000.0,
        departure=departure,
    )
    task = asyncio.create_task(sim.run())
    try:
        first = await seen.wait(lambda m: m.subject == "der.state.ocpp")
        assert first.data["ev_energy_needed_wh"] == [20_000.0]
        assert first.data["ev_departure_ms"] == [departure.timestamp() * 1000]
        assert sim.needs_status == "Accepted"
        # Meter values with the energy register count the delivered energy off the need.
        later = await seen.wait(
            lambda m: m.subject == "der.state.ocpp" and m.data["ev_energy_needed_wh"][0] < 20_000.0 - 1.0
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    remaining = later.data["ev_energy_needed_wh"][0]
    assert 20_000.0 - remaining == pytest.approx(sim.energy_wh, abs=11_000 * 0.1 / 3600 * 3)
    # The fleet state takes the report with its time: fresh now, stale an interval later.
    state = FleetState()
    state.register([(0, der, None)])
    cols, unknown = decode_device_states(later.data, state.index)
    assert unknown == [] and state.apply_device_state(cols) == 1
    assert state.ev_energy_needed_wh[0] == remaining
    now_ms = later.data["ts_ms"][0]
    assert state.fresh_state(now_ms, 900.0)[0] and not state.fresh_state(now_ms + 901_000, 900.0)[0]


async def test_departure_ends_the_transaction_and_clears_the_need(csms: tuple[OcppAdapter, Seen]) -> None:
    adapter, seen = csms
    await adapter.register_device(charger("SIM201/1"))
    clock = SystemClock()
    sim = SimChargePoint(
        "SIM201",
        f"ws://127.0.0.1:{adapter.csms.port}/ocpp",
        clock,
        version="2.0.1",
        password=PASSWORDS["SIM201"],
        meter_interval_s=0.1,
        need_wh=20_000.0,
        departure=clock.now() + dt.timedelta(seconds=1),
    )
    task = asyncio.create_task(sim.run())
    try:
        await seen.wait(lambda m: m.subject == "der.state.ocpp")
        cleared = await seen.wait(
            lambda m: m.subject == "der.state.ocpp" and m.data["ev_energy_needed_wh"] == [None]
        )
        await seen.wait(lambda m: m.subject == "telemetry.ocpp" and m.data["p_w"][0] == 0.0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert cleared.data["ev_departure_ms"] == [None]
    ended = [m for m in seen.messages if m.subject == "der.status.ocpp" and "Ended" in m.data["detail"]]
    assert len(ended) == 1 and needs(seen)[-1] == cleared.data  # nothing after the vehicle left


async def test_ocpp16_sessions_publish_no_need(csms: tuple[OcppAdapter, Seen]) -> None:
    adapter, seen = csms
    await adapter.register_device(charger("SIM16/1"))
    sim = SimChargePoint(
        "SIM16",
        f"ws://127.0.0.1:{adapter.csms.port}/ocpp",
        SystemClock(),
        version="1.6",
        password=PASSWORDS["SIM16"],
        meter_interval_s=0.1,
        need_wh=20_000.0,
    )
    task = asyncio.create_task(sim.run())
    try:
        # Several meter values with energy registers arrive, and no need comes of them.
        await seen.wait(lambda m: m.subject == "telemetry.ocpp" and m.data["p_w"][0] == -11_000)
        await seen.wait(lambda m: sum(x.subject == "telemetry.ocpp" for x in seen.messages) >= 5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert needs(seen) == []
