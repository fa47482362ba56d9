"""``live.planned_rows``/``fleet_input`` with kind-specific state: registered thermal
parameters (stored in the registry, defaults where not declared), fresh state only, cooling
thermostats only, EV departure relative to the plan's time, tank energy within the tank."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from sqlalchemy import Engine

from derms.core.der import Capabilities, Der, DerKind
from derms.core.device_state import DeviceState, decode_device_states, encode_device_states
from derms.core.site import Customer, Site
from derms.fleet.state import FleetState
from derms.orchestration import live
from derms.orchestration.flexibility import flexibility
from derms.orchestration.inputs import Preferences
from derms.store import registry as reg
from derms.store.scope import TenantScope
from tests.conftest import T0

HOUSE = Capabilities(w_max_consume=3_500.0, r_k_per_w=0.004, c_j_per_k=2.0e7, cop=3.4)


def registered(engine: Engine) -> FleetState:
    """Two thermostats (one declaring its house), an EV charger and a water heater, stored in
    the registry and read back as the runtime does."""
    scope = TenantScope.utility()
    ders = [
        Der("th-declared", "s", DerKind.THERMOSTAT, HOUSE, "sim", "a", "utility"),
        Der(
            "th-default", "s", DerKind.THERMOSTAT, Capabilities(w_max_consume=3_500.0), "sim", "b", "utility"
        ),
        Der("ev", "s", DerKind.EV_CHARGER, Capabilities(w_max_consume=7_200.0), "ocpp", "CP/1", "utility"),
        Der(
            "wh", "s", DerKind.WATER_HEATER, Capabilities(w_max_consume=4_500.0), "cta2045", "h:1", "utility"
        ),
    ]
    with engine.begin() as conn:
        reg.create_tenant(conn, tenant_id="utility", name="utility", kind="utility", at=T0, actor="test")
        reg.create_customers(conn, [Customer("c", "utility", "c")], scope=scope, at=T0, actor="test")
        reg.create_sites(conn, [Site("s", "c", "utility")], scope=scope, at=T0, actor="test")
        idx = reg.create_ders(conn, ders, scope=scope, at=T0, actor="test")
        stored = {d.id: d for d in reg.list_ders(conn, scope=scope, limit=None)}
    assert stored["th-declared"].capabilities == HOUSE
    state = FleetState()
    state.register((i, stored[d.id], None) for i, d in zip(idx, ders, strict=True))
    state.online[:] = state.available[:] = state.registered  # as after their first telemetry
    return state


def report(state: FleetState, reports: list[DeviceState]) -> None:
    cols, unknown = decode_device_states(encode_device_states(reports), state.index)
    assert not unknown
    state.apply_device_state(cols)


def test_planned_from_fresh_state_with_registered_or_default_house(db_engine: Engine) -> None:
    state = registered(db_engine)
    now = T0.timestamp() * 1000
    assert live.planned_rows(state, now).size == 0  # nothing reported: nothing planned
    report(
        state,
        [
            DeviceState("th-declared", T0, temp_c=24.0, temp_out_c=32.0),
            DeviceState("th-default", T0, temp_c=22.0, temp_out_c=12.0),  # heating: not planned
            DeviceState("ev", T0, ev_energy_needed_wh=9_000.0, ev_departure=T0 + timedelta(hours=3)),
            DeviceState("wh", T0, tank_wh=9_500.0, tank_max_wh=9_000.0),  # reads above its maximum
        ],
    )
    later = now + 300_000.0
    rows = live.planned_rows(state, later)
    assert [state.der_ids[i] for i in rows] == ["th-declared", "ev", "wh"]
    base = np.array([-3_500.0, 0.0, -7_200.0, 0.0])
    fleet = live.fleet_input(state, rows, np.full(len(state), -1), np.resize(base, len(state)), later)
    assert (fleet.r_k_per_w[0], fleet.c_j_per_k[0], fleet.cop[0]) == (0.004, 2.0e7, 3.4)
    assert fleet.ev_departure_s[1] == 3 * 3600 - 300 and fleet.ev_energy_needed_wh[1] == 9_000.0
    assert fleet.tank_wh[2] == fleet.tank_max_wh[2] == 9_000.0
    assert np.isnan(fleet.r_k_per_w[1:]).all()
    flex = flexibility(fleet, Preferences.build(fleet.n), dt_s=900.0)
    assert flex.up[0, 0] > 0 and flex.up[1, 0] > 0  # the running AC can shed, the EV can wait
    # Stale state is not planned from; the heating thermostat in cooling would be, with the
    # class-typical house.
    assert live.planned_rows(state, now + (live.STATE_MAX_AGE_S + 1) * 1000).size == 0
    report(state, [DeviceState("th-default", T0 + timedelta(minutes=1), temp_c=22.0, temp_out_c=30.0)])
    rows = live.planned_rows(state, later)
    fleet = live.fleet_input(state, rows, np.full(len(state), -1), np.resize(base, len(state)), later)
    i = fleet.der_ids.index("th-default")
    assert (fleet.r_k_per_w[i], fleet.c_j_per_k[i], fleet.cop[i]) == (
        live.THERMOSTAT_R_K_PER_W,
        live.THERMOSTAT_C_J_PER_K,
        live.THERMOSTAT_COP,
    )
