"""The orchestration service in a running platform: objectives on the bus become saved plans
whose setpoints reach the simulated devices and are acknowledged; devices dropping out
mid-objective are replaced from backups on their feeder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from derms.core.clock import ManualClock
from derms.core.der import DerKind
from derms.core.dispatch import CommandState
from derms.core.events import OBJECTIVE, encode_objective
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.orchestration.engine import Outcome
from derms.orchestration.replay import replay
from derms.orchestration.tables import commands, plans
from derms.runtime import Runtime
from derms.settings import Settings
from derms.sim.physics.battery import BatteryBank
from derms.store import audit
from derms.store.schema import objectives
from tests.orchestration.service_rig import START, Rig, start_rig


@pytest.fixture
async def rig(db_engine: Engine) -> AsyncIterator[Rig]:
    rig = await start_rig(db_engine)
    yield rig
    await rig.runtime.stop()


def capacity(target_w: float, feeder: str = "F0", oid: str = "evt-1") -> Objective:
    return Objective(
        oid,
        ObjectiveKind.CAPACITY_TARGET,
        START,
        timedelta(hours=2),
        area=Area(AreaLevel.FEEDER, (feeder,)),
        target_w=target_w,
        source="openadr:evt-1",
    )


def delivered(rig: Rig, outcome: Outcome, feeder: str) -> float:
    """The plan's change from the baseline on one feeder [W]."""
    orch = rig.service.orchestrator
    assert orch is not None
    on = orch.fleet.feeder == rig.runtime.fleet.feeder_ids.index(feeder)
    return float((outcome.solution.p_w[on, 0] - outcome.problem.flex.base[on, 0]).sum())


def states(rig: Rig, plan_id: str) -> dict[str, str]:
    with rig.runtime.engine.connect() as conn:
        rows = conn.execute(select(commands.c.der_id, commands.c.state).where(commands.c.plan_id == plan_id))
        return {r.der_id: r.state for r in rows}


async def test_bus_objective_becomes_plan_acknowledged_by_devices(rig: Rig) -> None:
    service = rig.service
    # objective.created as the OpenADR VEN publishes it, published twice (idempotent by id).
    for _ in range(2):
        await rig.runtime.bus.publish(f"{OBJECTIVE}.created", encode_objective(capacity(40e3)))
    await rig.drain()
    await service.step()
    await service.step()  # same interval, nothing changed: no second plan
    assert service.plans == 1
    out = service.last_outcome
    assert out is not None and out.plan.setpoints
    assert delivered(rig, out, "F0") == pytest.approx(40e3, abs=1.0)
    assert delivered(rig, out, "F1") == pytest.approx(0.0, abs=1e-6)
    with rig.runtime.engine.connect() as conn:
        saved = conn.execute(
            select(plans.c.inputs, plans.c.objective_ids).where(plans.c.id == out.plan.id)
        ).one()
        assert conn.execute(select(func.count()).select_from(objectives)).scalar_one() == 1
    assert saved.objective_ids == ["evt-1"]
    assert np.array_equal(replay(bytes(saved.inputs)).p_w, out.solution.p_w)  # replayable
    # Checked by AC power flow on the network model before it was sent, and audited so.
    assert out.ac_checks and out.ac_checks[-1].ok
    with rig.runtime.engine.connect() as conn:
        (entry,) = audit.entries(conn, action_prefix="orchestration.plan")
    assert entry.detail["ac_check"]["ok"] is True and entry.detail["ac_check"]["violated"] == []

    await rig.drain()
    assert set(states(rig, out.plan.id).values()) == {str(CommandState.ACTIVE)}
    counts = service.command_counts()
    assert counts["acknowledged_ever"] == len(out.plan.setpoints)
    # The devices follow: measured output against the setpoints, after they respond.
    await rig.settle(180.0)
    assert service._under_delivering(rig.clock.now()) == {}
    await service.step()
    assert service.replans == 0


async def test_device_offline_replans_its_feeder_from_backups(rig: Rig) -> None:
    service = rig.service
    await service.submit(capacity(40e3), actor="test")
    await service.step()
    first = service.last_outcome
    assert first is not None
    await rig.drain()
    victims = [s.der_id for s in first.plan.setpoints][:3]
    rig.drop(victims)
    await rig.settle(60.0)
    await service.step()
    assert service.replans == 1
    second = service.last_outcome
    assert second is not first and second.trigger == "offline: 3 DER(s)"
    assert delivered(rig, second, "F0") == pytest.approx(40e3, abs=1.0)  # target restored
    assert not set(victims) & {s.der_id for s in second.plan.setpoints}
    await rig.drain()
    backups = states(rig, second.plan.id)
    assert backups and set(backups) - set(victims) == set(backups)
    assert set(backups.values()) == {str(CommandState.ACTIVE)}
    for der_id in victims:  # the adapter failed their commands when they dropped
        assert states(rig, first.plan.id)[der_id] == str(CommandState.FAILED)

    # Debounced: another drop right away waits for the debounce interval.
    rig.drop([next(iter(backups))])
    await rig.settle(1.0)
    await service.step()
    assert service.replans == 1
    await rig.settle(service.options.debounce_s)
    await service.step()
    assert service.replans == 2
    assert delivered(rig, service.last_outcome, "F0") == pytest.approx(40e3, abs=1.0)


async def test_next_interval_plans_again_and_ended_objectives_stop(rig: Rig) -> None:
    service = rig.service
    await service.submit(capacity(20e3), actor="test")
    await service.step()
    await rig.settle(service.options.dt_s)
    await service.step()
    assert service.plans == 2
    await rig.settle(2 * 3600.0)
    await service.step()
    assert service.plans == 2 and not service.objectives


async def test_under_delivery_is_held_at_what_is_delivered(rig: Rig) -> None:
    """C&I sites that can shed only half the share they declare are asked for their declared
    share; they under-deliver, are held at what they deliver in a re-plan, and are not re-measured."""
    service, fleet = rig.service, rig.runtime.fleet
    ci = [d for d in rig.ders if d.kind is DerKind.CI_LOAD]
    declared = sum(-float(fleet.p_w[fleet.index[d.id]]) * d.capabilities.sheddable_fraction for d in ci)
    _, loads = rig.sim.fleet.model(DerKind.CI_LOAD)
    loads.flexible_fraction = loads.flexible_fraction / 2  # type: ignore[union-attr]
    objective = replace(capacity(0.9 * declared), area=Area(AreaLevel.GROUP, tuple(d.id for d in ci)))
    ci = [d.id for d in ci]
    await service.submit(objective, actor="test")
    await service.step()
    assert service.last_outcome is not None and service.last_outcome.plan.setpoints
    await rig.settle(service.options.measure_after_s + 60.0)
    await service.step()
    assert service.replans == 1
    out = service.last_outcome
    assert out.trigger.startswith("under-delivery")
    orch = service.orchestrator
    assert orch is not None
    held = service.held
    assert held and held <= set(ci)
    for i in (orch.fleet.der_ids.index(d) for d in held):  # planned at what each load does
        measured = float(fleet.p_w[fleet.index[orch.fleet.der_ids[i]]])
        assert out.solution.p_w[i, 0] == pytest.approx(measured, abs=1.0)
    assert out.solution.shortfall_w[objective.id][0] > 0.0  # reported, not hidden
    # The loads that took over are measured in turn; the held ones are not measured again.
    first_held = set(held)
    for _ in range(3):
        await rig.settle(service.options.debounce_s + 60.0)
        await service.step()
    assert service.replans == 1 + len(service.held - first_held) <= len(ci)
    # The next interval asks each of them for no more than it delivered.
    caps = dict(service.caps)
    assert set(caps) == service.held
    await rig.settle(service.options.dt_s)
    await service.step()
    nxt = service.last_outcome
    assert nxt is not None and nxt.trigger == "interval"
    assert service.orchestrator is not None
    for der_id, (up, _) in caps.items():
        i = service.orchestrator.fleet.der_ids.index(der_id)
        assert nxt.solution.p_w[i, 0] - nxt.problem.flex.base[i, 0] <= up + 1.0


async def test_cancelled_objective_stops_planning(rig: Rig) -> None:
    service = rig.service
    await rig.runtime.bus.publish(f"{OBJECTIVE}.created", encode_objective(capacity(20e3)))
    await rig.runtime.bus.publish(f"{OBJECTIVE}.created", {"id": "broken"})  # logged, dropped
    await rig.drain()
    await service.step()
    assert service.plans == 1 and list(service.objectives) == ["evt-1"]
    await rig.runtime.bus.publish(f"{OBJECTIVE}.cancelled", {"id": "evt-1", "source": "openadr:evt-1"})
    await rig.drain()
    await rig.settle(service.options.dt_s)
    await service.step()
    assert service.plans == 1 and not service.objectives
    with rig.runtime.engine.connect() as conn:
        assert conn.execute(select(objectives.c.state)).scalars().all() == ["cancelled"]


async def test_runtime_create_with_a_network_runs_the_service(rig: Rig) -> None:
    """``derms serve``'s path: DERMS_NETWORK names the grid model; with a fleet registered the
    runtime starts the orchestration service, which resumes active objectives from the database."""
    await rig.service.submit(capacity(10e3), actor="test")
    url = str(rig.runtime.engine.url)
    settings = Settings(database_url=url, network="cigre_mv", stale_after_s=None, orchestration_tick_s=0)
    runtime = Runtime.create(settings, clock=ManualClock(START))
    await runtime.start()
    try:
        assert runtime.network is not None and runtime.network.name == "cigre_mv"
        assert runtime.orchestration is not None and list(runtime.orchestration.objectives) == ["evt-1"]
    finally:
        await runtime.stop()


async def test_objective_for_an_area_without_ders_does_not_block_the_others(rig: Rig) -> None:
    service = rig.service
    await service.submit(capacity(10e3, feeder="F9", oid="nowhere"), actor="test")
    await service.step()
    assert service.plans == 0  # nothing to plan, nothing saved
    await service.submit(capacity(10e3), actor="test")
    await service.step()
    assert service.plans == 1 and service.last_outcome is not None
    assert service.last_outcome.plan.objective_ids == ("evt-1",)


async def test_cancelled_objective_releases_its_devices(rig: Rig) -> None:
    """Cancelling an objective mid-interval ends its commands at once (superseded by a
    short release command on the simulated adapter, which has no native cancel), the devices go
    back to what they did before, and the audit log says so."""
    service = rig.service
    # Batteries and C&I loads: devices whose power after the release shows it (a thermostat's
    # or water heater's follows its own thermostat).
    steady = tuple(d.id for d in rig.ders if d.kind in (DerKind.HOME_BATTERY, DerKind.CI_LOAD))
    await service.submit(replace(capacity(40e3), area=Area(AreaLevel.GROUP, steady)), actor="test")
    await service.step()
    out = service.last_outcome
    assert out is not None
    await rig.settle(180.0)
    before = {d: c.baseline_w for (d, _), c in service._in_force.items()}
    assert service.orchestrator is not None
    ids = service.orchestrator.fleet.der_ids
    asked = {s.der_id: float(out.solution.p_w[ids.index(s.der_id), 0]) for s in out.plan.setpoints}
    await rig.runtime.bus.publish(f"{OBJECTIVE}.cancelled", {"id": "evt-1", "source": "openadr:evt-1"})
    await rig.drain()
    await service.step()
    await rig.drain()
    assert not service._in_force
    originals = {s.der_id for s in out.plan.setpoints}
    with rig.runtime.engine.connect() as conn:
        rows = conn.execute(
            select(commands.c.id, commands.c.der_id, commands.c.state, commands.c.binding).where(
                commands.c.plan_id == out.plan.id
            )
        ).all()
    superseded = {r.der_id for r in rows if r.state == str(CommandState.SUPERSEDED)}
    assert superseded == originals
    releases = [r for r in rows if r.binding == "released"]
    assert {r.der_id for r in releases} == originals
    await rig.settle(
        service.options.release_s + 1.0
    )  # the releases complete; the devices follow their own control again
    assert service.tracker.states([r.id for r in releases]) == {
        r.id: CommandState.COMPLETED for r in releases
    }
    power = rig.sim.fleet.power()
    # A thermostat or water heater follows its own thermostat again, which may switch it off
    # or on whatever it did before the command: its power is no sign of the release.
    cycling = {d.id for d in rig.ders if d.kind in (DerKind.THERMOSTAT, DerKind.WATER_HEATER)}
    assert originals - cycling
    for der_id in originals - cycling:
        now_w = float(power[rig.sim.fleet.row(der_id)])
        assert abs(now_w - before[der_id]) < abs(asked[der_id] - before[der_id]), der_id
    with rig.runtime.engine.connect() as conn:
        entries = audit.entries(conn, action_prefix="orchestration.release")
    assert len(entries) == 1 and entries[0].detail["reason"] == "no objective active or ahead"
    assert set(entries[0].detail["superseded"]) == {
        r.id for r in rows if r.der_id in originals and r.binding != "released"
    }


async def test_delivery_check_is_one_sided(rig: Rig) -> None:
    """A load asked to shed that sheds more (its own demand fell) is not under-delivering;
    one that sheds less is."""
    service = rig.service
    ci = [d.id for d in rig.ders if d.kind is DerKind.CI_LOAD]
    await service.submit(replace(capacity(5e3), area=Area(AreaLevel.GROUP, tuple(ci))), actor="test")
    await service.step()
    await rig.settle(60.0)
    targets = {
        (k[0]): (c.control["w"], c.baseline_w)
        for k, c in service._in_force.items()
        if c.control["kind"] == "active_power_target"
    }
    assert targets and all(w > base for w, base in targets.values())  # shed: less consumption
    tol = service.options.tolerance_w
    beyond = {d: w + 5 * tol for d, (w, _) in targets.items()}  # consumes less than asked
    short = {d: w - 5 * tol for d, (w, _) in targets.items()}  # consumes more than asked
    base = {d: b for d, (_, b) in targets.items()}
    assert service.tracker.measure(beyond, tolerance_w=tol, baseline_w=base) == []
    assert sorted(service.tracker.measure(short, tolerance_w=tol, baseline_w=base)) == sorted(targets)
    assert sorted(service.tracker.measure(beyond, tolerance_w=tol)) == sorted(
        targets
    )  # no baseline: two-sided


async def test_ci_loads_are_asked_for_their_declared_sheddable_share(rig: Rig) -> None:
    """The plan bounds each C&I load's shed by the share its registered capabilities declare,
    which is what the simulated site can shed: the loads deliver what they are asked, up to the
    drift of their own demand since the baseline (AR(1) noise of a few per cent)."""
    service, fleet = rig.service, rig.runtime.fleet
    ci = {d.id: d for d in rig.ders if d.kind is DerKind.CI_LOAD}
    declared = sum(
        -float(fleet.p_w[fleet.index[i]]) * d.capabilities.sheddable_fraction for i, d in ci.items()
    )
    await service.submit(
        replace(capacity(0.8 * declared), area=Area(AreaLevel.GROUP, tuple(ci))), actor="test"
    )
    await service.step()
    out, orch = service.last_outcome, service.orchestrator
    assert out is not None and orch is not None and out.plan.setpoints
    for der_id, der in ci.items():
        i = orch.fleet.der_ids.index(der_id)
        base = float(out.problem.flex.base[i, 0])  # at most the rating
        shed = float(out.solution.p_w[i, 0]) - base
        assert -1e-6 <= shed <= der.capabilities.sheddable_fraction * -orch.fleet.p_w[i] + 1e-6
    assert float(np.nansum(out.solution.shortfall_w[out.plan.objective_ids[0]])) == pytest.approx(
        0.0, abs=1.0
    )
    await rig.settle(service.options.measure_after_s)
    power = rig.sim.fleet.power()
    for (der_id, _), cmd in service._in_force.items():
        asked = cmd.control["w"] - cmd.baseline_w
        got = float(power[rig.sim.fleet.row(der_id)]) - cmd.baseline_w
        assert got >= 0.9 * asked, der_id


async def test_storage_charges_ahead_of_an_objective_that_starts_later(rig: Rig) -> None:
    # Receding horizon: each plan looks to the end of the objective (at most horizon_s) and
    # dispatches its first step, so batteries too empty for an evening hour charge before it.
    service = rig.service
    rows, bank = rig.sim.fleet.model(DerKind.HOME_BATTERY)
    assert isinstance(bank, BatteryBank)
    bank.soc[:] = bank.soc_min + 0.1
    await rig.settle(60.0)  # they report the low state of charge
    ids = tuple(rig.sim.fleet.der_ids[r] for r in rows)
    eta_d = np.sqrt(bank.round_trip_efficiency)
    usable_wh = float(((bank.soc - bank.soc_min) * bank.wh_max).sum())
    target = 0.4 * float(bank.w_discharge_max.sum())  # a change from the baseline, for an hour
    assert target * 1.0 / eta_d.min() > 1.5 * usable_wh  # an hour at the target needs more than they hold
    start = rig.clock.now() + timedelta(hours=1)
    objective = Objective(
        "evening",
        ObjectiveKind.CAPACITY_TARGET,
        start,
        timedelta(hours=1),
        Area(AreaLevel.GROUP, ids),
        target_w=target,
    )
    await service.submit(objective, actor="test")
    await service.step()
    first = service.last_outcome
    assert first is not None and first.problem.steps == 8  # to the objective's end, 15-minute steps
    charging = {s.der_id for s in first.plan.setpoints if s.der_id in ids}
    dp = first.solution.p_w[:, 0] - first.problem.flex.base[:, 0]
    ours = np.isin(np.array(first.problem.der_ids), ids)
    assert charging and dp[ours].sum() < -0.25 * target  # charging now, an hour before the objective
    # A plan one interval deep would not have seen the objective at all.
    assert (
        replace(service.options, horizon_s=service.options.dt_s).horizon_s
        < (start - rig.clock.now()).total_seconds()
    )

    while rig.clock.now() < start:
        await rig.settle(service.options.dt_s)
        await service.step()
    charged_wh = float(((bank.soc - bank.soc_min) * bank.wh_max).sum())
    assert charged_wh > 2.0 * usable_wh
    at_start = service.last_outcome
    assert at_start is not None and at_start.problem.steps == 4
    # The whole hour is now deliverable: no shortfall in any of its intervals.
    assert float(at_start.solution.shortfall_w["evening"].sum()) == pytest.approx(0.0, abs=1.0)
    await rig.settle(service.options.measure_after_s + 60.0)
    ours = np.isin(np.array(at_start.problem.der_ids), ids)
    baseline_w = float(at_start.problem.flex.base[ours, 0].sum())
    delivered_w = sum(float(rig.runtime.fleet.p_w[rig.runtime.fleet.index[d]]) for d in ids) - baseline_w
    assert delivered_w >= 0.95 * target


async def test_battery_running_out_before_the_interval_ends_replans_its_feeder(rig: Rig) -> None:
    # A discharging battery whose reported state of charge is lower than the plan assumed (it
    # cannot carry its command to the next interval) is re-planned at once from its reported
    # SoC, before it runs empty, and the feeder's target is restored from backups.
    service = rig.service
    service.options = replace(service.options, horizon_s=service.options.dt_s)  # one interval
    await service.submit(capacity(40e3), actor="test")
    await service.step()
    first = service.last_outcome
    assert first is not None
    rows, bank = rig.sim.fleet.model(DerKind.HOME_BATTERY)
    assert isinstance(bank, BatteryBank)
    local = {rig.sim.fleet.der_ids[r]: k for k, r in enumerate(rows)}
    discharging = [
        s for s in first.plan.setpoints if s.der_id in local and getattr(s.control, "w", 0.0) > 1000.0
    ]
    assert discharging
    victim = discharging[0]
    k = local[victim.der_id]
    bank.soc[k] = 0.05  # far less than the plan assumed
    await rig.settle(30.0)  # it reports; too early for a delivery check
    assert service._under_delivering(rig.clock.now()) == {}
    await service.step()
    assert service.replans == 1
    again = service.last_outcome
    assert again is not None and again.trigger == "state of charge: 1 DER(s)"
    assert delivered(rig, again, "F0") == pytest.approx(40e3, abs=1.0)  # restored from backups
    i = again.problem.der_ids.index(victim.der_id)
    assert again.solution.p_w[i, 0] < victim.control.w - 1000.0  # asked for what its SoC allows
    await service.step()
    assert service.replans == 1  # the new command is within its reported energy: no loop
