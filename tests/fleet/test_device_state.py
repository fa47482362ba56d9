"""Kind-specific device state in the fleet state: a newer report replaces the whole row, an
older one is ignored, unknown DERs are named, and freshness follows the report's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from derms.adapters.base import AdapterContext
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.core.der import Capabilities, Der, DerKind
from derms.core.device_state import DeviceState, decode_device_states, encode_device_states
from derms.fleet.state import FleetState
from derms.fleet.tracker import FleetTracker

T0 = datetime(2026, 7, 15, 18, tzinfo=UTC)


def fleet() -> FleetState:
    state = FleetState()
    ders = [
        Der("ev", "s", DerKind.EV_CHARGER, Capabilities(w_max_consume=7200), "ocpp", "CP/1", "t"),
        Der("th", "s", DerKind.THERMOSTAT, Capabilities(w_max_consume=3500), "sim", "", "t"),
    ]
    state.register((i, d, None) for i, d in enumerate(ders))
    return state


def apply(state: FleetState, reports: list[DeviceState]) -> tuple[int, list[str]]:
    cols, unknown = decode_device_states(encode_device_states(reports), state.index)
    return state.apply_device_state(cols), unknown


def test_newer_report_replaces_the_row_and_older_is_ignored() -> None:
    state = fleet()
    leave = T0 + timedelta(hours=3)
    changed, unknown = apply(
        state,
        [
            DeviceState("ev", T0, ev_energy_needed_wh=9_000.0, ev_departure=leave),
            DeviceState("th", T0, temp_c=24.5, temp_out_c=31.0),
            DeviceState("nobody", T0, temp_c=20.0),
        ],
    )
    assert (changed, unknown) == (2, ["nobody"])
    assert state.ev_energy_needed_wh[0] == 9_000.0 and state.ev_departure_ms[0] == leave.timestamp() * 1000
    assert state.temp_c[1] == 24.5 and np.isnan(state.temp_c[0])
    # An older report does not overwrite; a newer one without a session clears it.
    assert apply(state, [DeviceState("ev", T0 - timedelta(minutes=1), ev_energy_needed_wh=1.0)])[0] == 0
    assert state.ev_energy_needed_wh[0] == 9_000.0
    assert apply(state, [DeviceState("ev", T0 + timedelta(minutes=1))])[0] == 1
    assert np.isnan(state.ev_energy_needed_wh[0]) and np.isnan(state.ev_departure_ms[0])
    now = (T0 + timedelta(minutes=10)).timestamp() * 1000
    assert state.fresh_state(now, 600.0).tolist() == [True, True] + [False] * (len(state) - 2)
    assert state.fresh_state(now, 599.0)[:2].tolist() == [True, False]


def test_malformed_reports_are_refused() -> None:
    state = fleet()
    batch = encode_device_states([DeviceState("ev", T0, ev_energy_needed_wh=5.0)])
    with pytest.raises(ValueError, match="differ in length"):
        decode_device_states({**batch, "temp_c": []}, state.index)
    with pytest.raises(ValueError, match="malformed"):
        decode_device_states({k: v for k, v in batch.items() if k != "ts_ms"}, state.index)
    with pytest.raises(ValueError, match=">= 0"):
        DeviceState("wh", T0, tank_wh=-1.0)


async def test_tracker_applies_device_state_from_the_bus() -> None:
    clock = ManualClock(T0)
    state = fleet()
    async with MemoryBus(clock) as bus:
        tracker = FleetTracker(bus, state, clock, None, flush_s=60)
        await tracker.start()
        context = AdapterContext(bus, clock, "ocpp")
        await context.publish_device_state(
            [DeviceState("ev", T0, ev_energy_needed_wh=4_000.0), DeviceState("x", T0)]
        )
        await context.publish_state_columns(
            ["th"], round(T0.timestamp() * 1000), {"temp_c": np.array([23.0])}
        )
        await bus.publish("der.state.ocpp", {"der_id": ["ev"], "ts_ms": [1]})  # malformed: dropped
        await bus.drain()
        await tracker.stop()
    assert state.ev_energy_needed_wh[0] == 4_000.0 and state.temp_c[1] == 23.0
    assert np.isnan(state.temp_out_c[1]) and tracker.unknown == {"x"}
