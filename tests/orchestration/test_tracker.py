"""Dispatch through the bridge to the simulated adapter, tracked in the database; replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine

from derms.adapters.base import AdapterContext
from derms.adapters.simulated import SimulatedAdapter, SimulatedSettings, create_adapter
from derms.bridge.base import Bridge
from derms.bridge.simulated import SimulatedTranslator
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.core.controls import ActivePowerTarget
from derms.core.der import Der, DerKind
from derms.core.dispatch import CommandState, DispatchPlan, Reason, Setpoint
from derms.orchestration.flexibility import flexibility
from derms.orchestration.inputs import FleetInput, Preferences, kind_code
from derms.orchestration.optimizer import solve
from derms.orchestration.plan import to_plan
from derms.orchestration.problem import Problem, Target
from derms.orchestration.replay import load, record, replay
from derms.orchestration.tracker import DispatchTracker
from derms.sim.generate import generate_fleet

START = datetime(2026, 7, 15, 23, 0, tzinfo=UTC)


async def eventually(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met within 5 s")


@pytest.fixture(scope="module")
def batteries() -> list[Der]:
    ders, _, _ = generate_fleet(60, ["b0", "b1"], seed=9, tenant_ids=["utility"], feeder_ids=["f1", "f1"])
    return [d for d in ders if d.kind is DerKind.HOME_BATTERY]


def battery_problem(ders: list[Der], target_w: float) -> Problem:
    fleet = FleetInput.build(
        [d.id for d in ders],
        kind=kind_code(DerKind.HOME_BATTERY),
        feeder=0,
        bus=0,
        soc=0.6,
        w_max=[d.capabilities.w_max for d in ders],
        w_max_consume=[d.capabilities.w_max_consume for d in ders],
        wh_max=[d.capabilities.wh_max for d in ders],
    )
    prefs = Preferences.build(fleet.n, cost_up=np.linspace(0.05, 0.1, fleet.n), soc_min=0.2)
    f = flexibility(fleet, prefs)
    return Problem.of(
        fleet,
        prefs,
        f,
        targets=(Target("evening-peak", np.ones(fleet.n, bool), np.array([target_w])),),
    )


@pytest.fixture
async def rig(
    db_engine: Engine, batteries: list[Der]
) -> AsyncIterator[tuple[DispatchTracker, SimulatedAdapter, ManualClock]]:
    bus = MemoryBus()
    await bus.start()
    clock = ManualClock(START)
    adapter = create_adapter(AdapterContext(bus, clock, "sim"), SimulatedSettings(), ders=batteries)
    await adapter.start()
    await adapter.stop()  # the test drives tick()
    tracker = DispatchTracker(
        db_engine,
        bus,
        Bridge([SimulatedTranslator()]),
        {"sim": adapter},
        clock,
        ack_timeout_s=30,
        max_attempts=2,
    )
    yield tracker, adapter, clock
    await tracker.stop()
    await bus.close()


async def test_plan_dispatched_and_tracked_to_completion(
    rig: tuple[DispatchTracker, SimulatedAdapter, ManualClock], batteries: list[Der]
) -> None:
    tracker, adapter, clock = rig
    await tracker.start()
    problem = battery_problem(batteries, 6000.0)
    solution = solve(problem)
    rec = record(problem)
    plan = to_plan(
        problem,
        solution,
        np.full(problem.n, kind_code(DerKind.HOME_BATTERY)),
        plan_id="plan-1",
        created_at=START,
        start=START,
        inputs_digest=rec.digest,
    )
    assert plan.setpoints and all(isinstance(s.control, ActivePowerTarget) for s in plan.setpoints)
    assert all(s.reason.objective_id == "evening-peak" for s in plan.setpoints)
    tracker.save_plan(plan, rec, status=solution.status, cost=solution.cost)
    ids = await tracker.dispatch(plan, {d.id: d for d in batteries})
    await eventually(lambda: all(tracker.state(c) is CommandState.ACTIVE for c in ids))
    # Delivery is measured against the simulator's output.
    for _ in range(3):
        clock.advance(60.0)
        await adapter.tick()
    power = adapter.fleet.power()
    measured = {d: float(power[adapter.fleet.row(d)]) for d in (s.der_id for s in plan.setpoints)}
    assert tracker.measure(measured) == []
    clock.advance(15 * 60.0)
    await adapter.tick()
    await eventually(lambda: all(tracker.state(c) is CommandState.COMPLETED for c in ids))
    states = [h[0] for h in tracker.history(ids[0])]
    assert states == ["pending", "sent", "acknowledged", "active", "completed"]


async def test_refused_translation_fails_with_reason(
    rig: tuple[DispatchTracker, SimulatedAdapter, ManualClock], batteries: list[Der]
) -> None:
    tracker, _, _ = rig
    der = batteries[0]
    too_much = Setpoint(
        der.id,
        ActivePowerTarget(w=der.capabilities.w_max * 3),
        START,
        START + timedelta(minutes=15),
        Reason("x"),
    )
    unknown = Setpoint("nope", ActivePowerTarget(w=1.0), START, START + timedelta(minutes=15), Reason("x"))
    plan = DispatchPlan("plan-bad", START, (too_much, unknown))
    rec = record(battery_problem(batteries, 1.0))
    tracker.save_plan(
        DispatchPlan("plan-bad", START, plan.setpoints, inputs_digest=rec.digest), rec, status="t", cost=0
    )
    ids = await tracker.dispatch(plan, {der.id: der})
    assert [tracker.state(c) for c in ids] == [CommandState.FAILED, CommandState.FAILED]
    assert "exceeds w_max" in tracker.history(ids[0])[-1][2]
    assert "unknown DER" in tracker.history(ids[1])[-1][2]


async def test_lost_acknowledgements_are_retried_then_failed(
    rig: tuple[DispatchTracker, SimulatedAdapter, ManualClock], batteries: list[Der]
) -> None:
    tracker, _, clock = rig
    # The tracker is not subscribed: the adapter's acknowledgements never reach it.
    der = batteries[0]
    sp = Setpoint(der.id, ActivePowerTarget(w=1000.0), START, START + timedelta(minutes=15), Reason("x"))
    rec = record(battery_problem(batteries, 1.0))
    plan = DispatchPlan("plan-lost", START, (sp,), inputs_digest=rec.digest)
    tracker.save_plan(plan, rec, status="t", cost=0)
    (cid,) = await tracker.dispatch(plan, {der.id: der})
    assert tracker.state(cid) is CommandState.SENT
    assert await tracker.check_timeouts() == []  # not due yet
    clock.advance(31.0)
    assert await tracker.check_timeouts() == []  # retried
    assert any(h[2] == "retry 2" for h in tracker.history(cid))
    clock.advance(31.0)
    assert await tracker.check_timeouts() == [cid]
    assert tracker.state(cid) is CommandState.FAILED
    # A late acknowledgement after the final state is ignored.
    assert tracker.apply(cid, CommandState.ACKNOWLEDGED) is False


async def test_plan_replayed_exactly_from_the_database(
    rig: tuple[DispatchTracker, SimulatedAdapter, ManualClock], batteries: list[Der]
) -> None:
    tracker, _, _ = rig
    problem = battery_problem(batteries, 7000.0)
    solution = solve(problem, time_limit_s=5.0)
    rec = record(problem, time_limit_s=5.0)
    plan = to_plan(
        problem,
        solution,
        np.full(problem.n, kind_code(DerKind.HOME_BATTERY)),
        plan_id="plan-replay",
        created_at=START,
        start=START,
        inputs_digest=rec.digest,
    )
    tracker.save_plan(plan, rec, status=solution.status, cost=solution.cost)
    stored = tracker.recorded_inputs("plan-replay")
    loaded, options, digest = load(stored)
    assert digest == plan.inputs_digest and options == {"time_limit_s": 5.0}
    again = replay(stored)
    assert np.array_equal(again.p_w, solution.p_w)
    assert np.array_equal(again.why.binding_code, solution.why.binding_code)
    assert loaded.der_ids == problem.der_ids
    with pytest.raises(ValueError, match="not a dispatch record"):
        load(b"garbage")
