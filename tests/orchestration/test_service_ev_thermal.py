"""The live service plans EV chargers, thermostats and water heaters from the state their
devices report (``der.state.sim``): an objective is met partly by them, the simulated devices
acknowledge their commands, and an EV that must leave soon is charged enough to leave with
what it asked for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, select

from derms.core.der import DerKind
from derms.core.dispatch import CommandState
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.fleet.state import KIND_CODES
from derms.orchestration import live
from derms.orchestration.flexibility import flexibility
from derms.orchestration.inputs import Preferences
from derms.orchestration.tables import commands
from derms.sim.physics import EvChargers
from tests.orchestration.service_rig import START, Rig, start_rig

DT_S = 900.0
TIGHT_DWELL_S = 1800.0


@pytest.fixture
async def rig(db_engine: Engine) -> AsyncIterator[Rig]:
    rig = await start_rig(db_engine)
    yield rig
    await rig.runtime.stop()


def now_ms(rig: Rig) -> float:
    return rig.clock.now().timestamp() * 1000.0


async def plug_in(rig: Rig) -> tuple[str, float]:
    """Vehicles on every EV charger: one must leave in 30 minutes needing 80 % of what its
    charger can give by then, the others stay 10 h for 5 kWh. Returns the urgent one and its
    need at the meter [Wh]."""
    fleet = rig.sim.fleet
    evs = [d for d in rig.ders if d.kind is DerKind.EV_CHARGER]
    urgent = evs[0]
    rows, model = fleet.model(DerKind.EV_CHARGER)
    assert isinstance(model, EvChargers)
    need_grid = 0.8 * urgent.capabilities.w_max_consume * TIGHT_DWELL_S / 3600.0
    local = int(np.flatnonzero(rows == fleet.row(urgent.id))[0])
    ids = np.array(fleet.der_ids)
    assert fleet.ev_surge(ids == urgent.id, need_grid * model.efficiency[local], TIGHT_DWELL_S) == 1
    fleet.ev_surge(np.isin(ids, [d.id for d in evs[1:]]), 5_000.0, 10 * 3600.0)
    await rig.settle(60.0)  # the sessions are reported (der.state.sim)
    return urgent.id, need_grid


async def test_evs_and_thermal_loads_meet_an_objective_and_the_urgent_ev_leaves_charged(rig: Rig) -> None:
    service, state = rig.service, rig.runtime.fleet
    # One interval at a time: the objective asks for what the devices can give in the first one.
    service.options = replace(service.options, horizon_s=DT_S)
    urgent, need = await plug_in(rig)
    row = state.index[urgent]
    assert state.ev_energy_needed_wh[row] == pytest.approx(need - 60.0 / 3600.0 * -state.p_w[row], rel=1e-6)
    assert state.ev_departure_ms[row] > now_ms(rig)
    assert state.fresh_state(now_ms(rig), live.STATE_MAX_AGE_S)[row]

    # What each kind can give upwards in the first interval, from the same inputs the service uses.
    rows = live.planned_rows(state, now_ms(rig))
    base = live.baseline_p(state, {})
    bus = live.der_bus_positions(rig.runtime.engine, rig.model, len(state))
    fleet = live.fleet_input(state, rows, bus, base, now_ms(rig))
    flex = flexibility(fleet, Preferences.build(fleet.n), dt_s=DT_S)
    kinds = {
        k: fleet.kind == KIND_CODES[k] for k in (DerKind.EV_CHARGER, DerKind.THERMOSTAT, DerKind.WATER_HEATER)
    }
    assert all(mask.any() for mask in kinds.values())  # every kind reported and is planned
    thermal = kinds[DerKind.THERMOSTAT] | kinds[DerKind.WATER_HEATER]
    ev_up, thermal_up = float(flex.up[kinds[DerKind.EV_CHARGER], 0].sum()), float(flex.up[thermal, 0].sum())
    assert ev_up > 0 and thermal_up > 0
    # The urgent EV must charge at least what it cannot make up after this interval.
    i = fleet.der_ids.index(urgent)
    must_w = (
        need
        - 60.0 / 3600.0 * -state.p_w[row]
        - (TIGHT_DWELL_S - 60.0 - DT_S) / 3600.0 * fleet.w_max_consume[i]
    ) / (DT_S / 3600.0)
    assert flex.p_hi[i, 0] == pytest.approx(-must_w, rel=1e-3)

    # More than every EV can give: the thermal loads give the rest.
    target = ev_up + 0.5 * thermal_up
    members = tuple(fleet.der_ids[j] for j in np.flatnonzero(kinds[DerKind.EV_CHARGER] | thermal))
    objective = Objective(
        "ev-thermal",
        ObjectiveKind.CAPACITY_TARGET,
        START,
        timedelta(hours=2),
        area=Area(AreaLevel.GROUP, members),
        target_w=target,
    )
    await service.submit(objective, actor="test")
    await service.step()
    out, orch = service.last_outcome, service.orchestrator
    assert out is not None and orch is not None
    change = out.solution.p_w[:, 0] - out.problem.flex.base[:, 0]
    planned_kind = orch.fleet.kind
    by_ev = float(change[planned_kind == KIND_CODES[DerKind.EV_CHARGER]].sum())
    by_thermal = float(
        change[
            np.isin(planned_kind, [KIND_CODES[DerKind.THERMOSTAT], KIND_CODES[DerKind.WATER_HEATER]])
        ].sum()
    )
    assert float(np.nansum(out.solution.shortfall_w["ev-thermal"])) == pytest.approx(0.0, abs=1.0)
    assert by_ev > 0.5 * ev_up and by_thermal > 0.25 * thermal_up
    assert by_ev + by_thermal == pytest.approx(target, rel=1e-3)
    j = orch.fleet.der_ids.index(urgent)
    assert out.solution.p_w[j, 0] <= -must_w + 1.0  # charges at least what it must
    (urgent_sp,) = [s for s in out.plan.setpoints if s.der_id == urgent]
    assert urgent_sp.control.kind == "charging_limit" and urgent_sp.control.limit >= must_w - 1.0

    await rig.settle(60.0)
    with rig.runtime.engine.connect() as conn:
        got = dict(
            conn.execute(
                select(commands.c.der_id, commands.c.state).where(commands.c.plan_id == out.plan.id)
            ).all()
        )
    assert got and set(got.values()) == {str(CommandState.ACTIVE)}
    sent_kinds = {rig.sim.fleet.der(d).kind for d in got}
    assert DerKind.EV_CHARGER in sent_kinds and sent_kinds & {DerKind.THERMOSTAT, DerKind.WATER_HEATER}

    # Until it leaves, the urgent EV is planned every interval from its reported need, and
    # leaves with (within one simulated minute of charging) all it asked for.
    rows_ev, model = rig.sim.fleet.model(DerKind.EV_CHARGER)
    assert isinstance(model, EvChargers)
    local = int(np.flatnonzero(rows_ev == rig.sim.fleet.row(urgent))[0])
    left = float(model.need_wh[local])
    while model.connected[local]:
        left = float(model.need_wh[local])
        await service.step()
        await rig.settle(60.0)
    assert left / model.efficiency[local] <= fleet.w_max_consume[i] * 60.0 / 3600.0 + 1.0
    assert service.plans >= 2


async def test_stale_or_missing_state_leaves_the_device_out(rig: Rig) -> None:
    state = rig.runtime.fleet
    urgent, _ = await plug_in(rig)
    planned = {state.der_ids[i] for i in live.planned_rows(state, now_ms(rig))}
    assert urgent in planned
    later = now_ms(rig) + (live.STATE_MAX_AGE_S + 1.0) * 1000.0
    stale = {state.der_ids[i] for i in live.planned_rows(state, later)}
    thermal = {
        d.id for d in rig.ders if d.kind in (DerKind.EV_CHARGER, DerKind.THERMOSTAT, DerKind.WATER_HEATER)
    }
    assert not stale & thermal and stale == planned - thermal
    enabled = {d.id for d in rig.ders if d.enabled and d.kind is DerKind.EV_CHARGER}
    # Chargers left out hold a vehicle already charged (plugged in since the night before).
    assert len(enabled & planned) > 0.8 * len(enabled)
    assert all(state.ev_energy_needed_wh[state.index[d]] == 0.0 for d in enabled - planned)
    # A vehicle that left takes its need along: its charger is no longer planned.
    rows_ev, model = rig.sim.fleet.model(DerKind.EV_CHARGER)
    assert isinstance(model, EvChargers)
    local = int(np.flatnonzero(rows_ev == rig.sim.fleet.row(urgent))[0])
    model.departure_s[local] = rig.clock.now().timestamp()
    await rig.settle(60.0)
    row = state.index[urgent]
    assert np.isnan(state.ev_energy_needed_wh[row]) and np.isnan(state.ev_departure_ms[row])
    now_planned = {state.der_ids[i] for i in live.planned_rows(state, now_ms(rig))}
    assert urgent not in now_planned and (enabled & planned) - {urgent} <= now_planned
