"""In the running service, a commanded load's baseline is refreshed at each interval plan from
its like days in the telemetry store (``baseline_refresh``), and stays its pre-command power
while there is no such history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine

from derms.core.columns import TelemetryColumns
from derms.core.der import DerKind
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.orchestration.baseline_refresh import Commanded, refreshed_baselines
from derms.orchestration.service import ServiceOptions
from derms.store.telemetry import TelemetryStore
from tests.orchestration.service_rig import START, Rig, start_rig

DAY = START.replace(hour=0, minute=0)
STEP = 900


@pytest.fixture
async def rig(db_engine: Engine) -> AsyncIterator[Rig]:
    rig = await start_rig(db_engine, n=120)
    yield rig
    await rig.runtime.stop()


def _shed(ci: list[str]) -> Objective:
    return Objective(
        "evt-ci",
        ObjectiveKind.CAPACITY_TARGET,
        START,
        timedelta(hours=2),
        area=Area(AreaLevel.GROUP, tuple(ci)),
        target_w=5e3,
        source="test",
    )


def _baseline_of(rig: Rig, der_id: str) -> float:
    orch = rig.service.orchestrator
    assert orch is not None
    return float(orch.fleet.p_w[orch.fleet.der_ids.index(der_id)])


async def test_commanded_loads_get_like_day_baselines_at_the_next_interval(rig: Rig) -> None:
    service, fleet = rig.service, rig.runtime.fleet
    ci = [d.id for d in rig.ders if d.kind is DerKind.CI_LOAD]
    # 20 days of 15-minute history for every C&I load: demand rising through the day.
    level = {d: -float(fleet.p_w[fleet.index[d]]) for d in ci}
    idx, ts, p = [], [], []
    for d in ci:
        for days_ago in range(1, 21):
            for slot in range(96):
                idx.append(fleet.index[d])
                ts.append(int((DAY - timedelta(days=days_ago, seconds=-slot * STEP)).timestamp() * 1000))
                p.append(-level[d] * (1.0 + 0.01 * slot))
    TelemetryStore(rig.runtime.engine).ingest(
        TelemetryColumns.from_arrays(np.array(idx), np.array(ts), p_w=np.array(p))
    )

    await service.submit(_shed(ci), actor="test")
    await service.step()
    commanded = {d: c for (d, _), c in service._in_force.items()}
    assert commanded
    pre = {d: c.baseline_w for d, c in commanded.items()}
    for d in commanded:  # the first plan: the pre-command power
        assert _baseline_of(rig, d) == pytest.approx(pre[d])

    await rig.settle(STEP)  # the next interval: a full plan with refreshed baselines
    await service.step()
    now = rig.clock.now()
    want = refreshed_baselines(
        rig.runtime.engine,
        {d: Commanded(fleet.index[d], c.since, c.baseline_w) for d, c in commanded.items()},
        now,
        dt_s=STEP,
    )
    assert set(want) == set(commanded)
    for d in commanded:
        assert _baseline_of(rig, d) == pytest.approx(want[d])
        # Like days: 1.89 x level at 22:15, 1.87 x level at 21:45 (before the run began at
        # 22:01); the pre-command demand is level, so the factor 1 / 1.87 is clipped at 0.8.
        assert want[d] == pytest.approx(-level[d] * 1.89 * 0.8, rel=1e-6)
        assert want[d] != pytest.approx(pre[d], rel=0.05)


async def test_without_history_the_pre_command_baseline_stays(rig: Rig) -> None:
    service = rig.service
    ci = [d.id for d in rig.ders if d.kind is DerKind.CI_LOAD]
    await service.submit(_shed(ci), actor="test")
    await service.step()
    pre = {d: c.baseline_w for (d, _), c in service._in_force.items()}
    await rig.settle(STEP)
    await service.step()
    assert pre and service._refreshed == {}
    for d, w in pre.items():
        assert _baseline_of(rig, d) == pytest.approx(w)


def test_an_interval_that_does_not_divide_the_day_into_hours_needs_the_refresh_off() -> None:
    with pytest.raises(ValueError, match="multiple of 24"):
        ServiceOptions(dt_s=7200.0)
    assert ServiceOptions(dt_s=7200.0, baseline_rule=None).baseline_rule is None
