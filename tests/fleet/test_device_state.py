"""Kind-specific device state in the fleet state: a newer report replaces the whole row, an
older one is ignored, unknown DERs are named, and freshness follows the report's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from derms.core.der import Capabilities, Der, DerKind
from derms.core.device_state import DeviceState, decode_device_states, encode_device_states
from derms.fleet.state import FleetState

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
