"""The live service's horizon baselines: at 17:00 local standard time in July the PV baseline
of a 4-hour plan falls to zero by sunset (clear-sky-index persistence from the sites'
registered location), and a peak reduction's area import rises by what the area's PV stops
injecting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, update

from derms.core.der import DerKind
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.fleet.state import KIND_CODES
from derms.orchestration import live
from derms.sim.weather import Weather
from derms.store.schema import sites
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
