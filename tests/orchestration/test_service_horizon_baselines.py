"""The live service's horizon baselines: at 17:00 local standard time in July the PV baseline
of a 4-hour plan falls to zero by sunset (clear-sky-index persistence from the sites'
registered location), and a peak reduction's area import rises by what the area's PV stops
injecting; C&I loads' baselines follow the shape of their like days in the telemetry store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, update

from derms.core.columns import TelemetryColumns
from derms.core.der import DerKind
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.fleet.state import KIND_CODES
from derms.orchestration import live
from derms.sim.weather import Weather
from derms.store.schema import sites
from derms.store.telemetry import TelemetryStore
from tests.orchestration.service_rig import START, Rig, start_rig


@pytest.fixture
async def rig(db_engine: Engine) -> AsyncIterator[Rig]:
    rig = await start_rig(db_engine)
    yield rig
    await rig.runtime.stop()


async def test_pv_baseline_falls_to_sunset_and_the_peak_import_rises(rig: Rig) -> None:
    station = Weather().location  # the simulator's TMY station (Greensboro NC)
    with rig.runtime.engine.begin() as conn:
        conn.execute(update(sites).values(latitude=station.latitude, longitude=station.longitude))
    service, state = rig.service, rig.runtime.fleet
    where = live.areas(state, rig.model)
    feeder = Area(AreaLevel.FEEDER, ("F0",))
    probe = Objective("probe", ObjectiveKind.PEAK_REDUCTION, START, timedelta(hours=4), feeder, target_w=0.0)
    import_now = live.area_import_w(probe, state, where, rig.model, live.baseline_p(state, {}))
    peak = Objective(
        "evening-peak",
        ObjectiveKind.PEAK_REDUCTION,
        rig.clock.now(),
        timedelta(hours=4),
        feeder,
        target_w=import_now - 50e3,
    )
    await service.submit(peak, actor="test")
    await service.step()
    outcome, orch = service.last_outcome, service.orchestrator
    assert outcome is not None and orch is not None
    flex = outcome.problem.flex
    assert flex.steps == 16  # 17:00 to 21:00 local standard time, 15-minute steps

    pv = np.isin(orch.fleet.kind, [KIND_CODES[DerKind.PV_INVERTER], KIND_CODES[DerKind.UTILITY_PV]])
    rows = np.array([state.index[d] for d in orch.fleet.der_ids])  # fleet state rows of the plan's
    assert np.array_equal(flex.base[pv, 0], np.nan_to_num(state.p_w[rows[pv]]))  # dispatched: measured
    total = flex.base[pv].sum(axis=0)
    assert total[0] > 20e3  # the fleet's PV produces at 17:00
    assert np.all(np.diff(total[1:11]) < 0.0) and total[9] > 0.0  # falling towards sunset
    assert np.all(total[10:] < 1.0)  # sunset 19:33 local standard time (SPA), in step 10
    assert np.all(flex.p_hi[pv, 10:] < 1.0)  # nothing left to curtail after sunset

    imports = orch.area_import_w[peak.id]
    assert imports[0] == pytest.approx(import_now)
    f0 = pv & (orch.fleet.feeder == state.feeder_ids.index("F0")) & state.online[rows]
    lost = flex.base[f0, :1] - flex.base[f0]  # the area's PV injection gone at each step
    assert np.allclose(imports - imports[0], lost.sum(axis=0), rtol=1e-9, atol=1e-6)
    assert imports[-1] - imports[0] > 10e3
    need = outcome.problem.targets[0].value_w
    assert np.allclose(need, imports - peak.target_w)  # the plan reduces the rising import


async def test_load_baselines_follow_their_like_days(rig: Rig) -> None:
    # Two weeks of telemetry before today in which every C&I load's demand rises by 2 % an
    # interval through the evening (the store's own history: the service reads it back).
    state = rig.runtime.fleet
    loads = [d for d in rig.ders if d.kind is DerKind.CI_LOAD]
    today = START.replace(hour=0)
    slot_now = (START - today) // timedelta(minutes=15)
    idx, ts, p = [], [], []
    for n, der in enumerate(loads):
        for days_ago in range(1, 15):
            for slot in range(slot_now, 96):
                at = today - timedelta(days=days_ago) + slot * timedelta(minutes=15)
                idx.append(state.index[der.id])
                ts.append(int(at.timestamp() * 1000))
                p.append(-(50e3 + 1e3 * n) * (1.0 + 0.02 * (slot - slot_now)))
    TelemetryStore(rig.runtime.engine).ingest(
        TelemetryColumns.from_arrays(np.array(idx), np.array(ts), p_w=np.array(p))
    )
    peak = Objective(
        "evening",
        ObjectiveKind.CAPACITY_TARGET,
        rig.clock.now(),
        timedelta(hours=4),
        Area(AreaLevel.FEEDER, ("F0",)),
        target_w=20e3,
    )
    await rig.service.submit(peak, actor="test")
    await rig.service.step()
    orch = rig.service.orchestrator
    assert orch is not None and orch.fleet.p_w_steps is not None
    ci = np.flatnonzero(orch.fleet.kind == KIND_CODES[DerKind.CI_LOAD])
    assert len(ci) == len(loads) > 0
    ahead = orch.fleet.p_w_steps[ci]
    left = 96 - slot_now  # intervals left in the UTC day; then the last factor persists
    factors = np.minimum(1.0 + 0.02 * np.arange(16), 1.0 + 0.02 * (left - 1))
    assert ahead == pytest.approx(orch.fleet.p_w[ci, None] * factors[None, :], rel=1e-9)
