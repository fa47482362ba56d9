"""The orchestrator: objectives to explained, recorded plans; re-planning on bus events."""

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.core.events import DER_STATUS
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.orchestration.engine import Orchestrator
from derms.orchestration.objectives import Areas
from derms.orchestration.replay import replay
from derms.orchestration.synthetic import scenario

START = datetime(2026, 7, 15, 23, 0, tzinfo=UTC)


@pytest.fixture
def orchestrator() -> Orchestrator:
    sc = scenario(3000, feeders=5, buses_per_feeder=6, seed=11)
    areas = Areas(
        feeder_ids=tuple(f"F{k}" for k in range(5)), substation_of_feeder={f"F{k}": "S0" for k in range(5)}
    )
    return Orchestrator(sc.fleet, sc.prefs, areas, ManualClock(START), grid=sc.grid)


def capacity(oid: str, feeder: str, target_w: float) -> Objective:
    return Objective(
        oid,
        ObjectiveKind.CAPACITY_TARGET,
        START - timedelta(minutes=5),
        timedelta(hours=2),
        area=Area(AreaLevel.FEEDER, (feeder,)),
        target_w=target_w,
        source="openadr:evt-1",
    )


def delivered(orch: Orchestrator, feeder: int) -> float:
    out = orch.current
    assert out is not None
    m = orch.fleet.feeder == feeder
    return float((out.solution.p_w[m, 0] - out.problem.flex.base[m, 0]).sum())


async def test_objective_offline_and_bus_events_replan(orchestrator: Orchestrator) -> None:
    orch = orchestrator
    first = orch.add_objective(capacity("evt-1", "F1", 150e3))
    assert delivered(orch, 1) == pytest.approx(150e3, abs=1.0)
    assert first.plan.setpoints and {s.reason.objective_id for s in first.plan.setpoints} == {"evt-1"}
    assert first.plan.inputs_digest == first.record.digest
    assert np.array_equal(replay(first.record.data).p_w, first.solution.p_w)
    # Other feeders are not dispatched for a feeder objective.
    assert delivered(orch, 0) == pytest.approx(0.0, abs=1e-6)

    dispatched = [s.der_id for s in first.plan.setpoints][:10]
    second = orch.devices_offline(dispatched)
    assert second.trigger.startswith("offline")
    assert delivered(orch, 1) == pytest.approx(150e3, abs=1.0)
    gone = {s.der_id for s in second.plan.setpoints} & set(dispatched)
    assert not gone

    bus = MemoryBus()
    await bus.start()
    await orch.attach(bus)
    victim = next(s.der_id for s in second.plan.setpoints)
    await bus.publish(
        f"{DER_STATUS}.sim", {"der_id": victim, "online": False, "detail": "lost", "ts": START.isoformat()}
    )
    for _ in range(200):
        if orch.current is not None and orch.current is not second:
            break
        await asyncio.sleep(0.02)
    assert orch.current is not second
    assert victim not in {s.der_id for s in orch.current.plan.setpoints}
    assert delivered(orch, 1) == pytest.approx(150e3, abs=1.0)
    await orch.detach()
    await bus.close()


def test_soc_and_under_delivery_replan(orchestrator: Orchestrator) -> None:
    orch = orchestrator
    orch.add_objective(capacity("evt-2", "F2", 400e3))
    plan = orch.current
    assert plan is not None
    rows = [i for i in np.flatnonzero(orch.fleet.feeder == 2) if not np.isnan(orch.fleet.soc[i])]
    batteries_used = [
        orch.fleet.der_ids[i] for i in rows if plan.solution.p_w[i, 0] - plan.problem.flex.base[i, 0] > 1.0
    ]
    assert batteries_used
    out = orch.soc_update({d: 0.0 for d in batteries_used})
    assert delivered(orch, 2) == pytest.approx(400e3, abs=1.0)
    idx = (
        [orch.fleet.index_of(d) for d in batteries_used]
        if hasattr(orch.fleet, "index_of")
        else [orch.fleet.der_ids.index(d) for d in batteries_used]
    )
    assert np.all(out.solution.p_w[idx, 0] <= 1e-6)
    some = [s.der_id for s in out.plan.setpoints][:5]
    measured = {d: 0.0 for d in some}
    again = orch.under_delivery(measured)
    assert again.trigger.startswith("under-delivery")
    assert delivered(orch, 2) == pytest.approx(400e3, abs=1.0)


def test_topology_change_transfers_ders_between_feeders(orchestrator: Orchestrator) -> None:
    orch = orchestrator
    orch.add_objective(capacity("evt-3", "F1", 200e3))
    before = orch.current
    assert before is not None
    # A tie switch closes and half of feeder F3 is now fed from F1.
    new_feeder = orch.fleet.feeder.copy()
    moved = np.flatnonzero(new_feeder == 3)[::2]
    new_feeder[moved] = 1
    assert orch.grid is not None
    out = orch.topology_changed(orch.grid, np.array([1, 3]), new_feeder)
    assert out.trigger == "topology change"
    assert delivered(orch, 1) == pytest.approx(200e3, abs=1.0)
    served = {s.der_id for s in out.plan.setpoints}
    assert served & {orch.fleet.der_ids[i] for i in moved}  # the transferred DERs now take part
    untouched = ~np.isin(orch.fleet.feeder, [1, 3])
    assert np.array_equal(out.solution.p_w[untouched], before.solution.p_w[untouched])
