"""Console interventions over HTTP against the running sandbox: role checks, audit, switching
and outages re-tracing the fleet, opt-out, hand dispatch and cancel, alarms and reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from derms.core.der import DerKind
from derms.fleet import KIND_CODES
from derms.orchestration.flexibility import flexibility
from derms.orchestration.inputs import FleetInput, Preferences, kind_code
from derms.orchestration.optimizer import solve
from derms.orchestration.plan import to_plan
from derms.orchestration.problem import Problem, Target
from derms.orchestration.replay import record
from derms.orchestration.tracker import DispatchTracker
from derms.store import audit as audit_store
from derms.store import registry as reg
from derms.store.schema import sites
from derms.store.scope import TenantScope
from tests.console.conftest import HostedSandbox


@contextmanager
def client(sandbox: HostedSandbox, user: str | None) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.box.url, timeout=30) as c:
        if user is not None:
            c.post("/console/api/session", json={"token": sandbox.box.tokens[user]}).raise_for_status()
        yield c


@pytest.fixture
def operator(sandbox: HostedSandbox) -> Iterator[httpx.Client]:
    with client(sandbox, "operator") as c:
        yield c


def audit_actions(sandbox: HostedSandbox, prefix: str) -> list[audit_store.AuditEntry]:
    with sandbox.box.runtime.engine.connect() as conn:
        return audit_store.entries(conn, action_prefix=prefix, limit=100_000)


@pytest.mark.timeout(600)  # starts the sandbox when run alone
def test_actions_need_a_session_an_operator_and_json(sandbox: HostedSandbox) -> None:
    body = {"feeder_id": "F0", "target_w": 1000}
    with client(sandbox, None) as anonymous:
        assert anonymous.post("/console/api/dispatch", json=body).status_code == 401
        assert anonymous.get("/console/", follow_redirects=False).status_code == 303
    with client(sandbox, "viewer") as viewer:
        assert viewer.get("/console/api/state").status_code == 200
        assert viewer.post("/console/api/dispatch", json=body).status_code == 403
        assert viewer.post("/console/api/ack", json={"alarm_id": 1}).status_code == 403
    with client(sandbox, "operator") as op:
        form = op.post("/console/api/dispatch", data={"feeder_id": "F0", "target_w": "1000"})
        assert form.status_code == 403  # only JSON changes state
    with client(sandbox, None) as bad:
        assert bad.post("/console/api/session", json={"token": "derms_nope"}).status_code == 401


def test_switching_and_outage_retrace_sites_and_fleet(sandbox: HostedSandbox, operator: httpx.Client) -> None:
    rt = sandbox.box.runtime

    def mapping_consistent() -> bool:
        model, fleet = rt.network, rt.fleet
        with rt.engine.connect() as conn:
            stored = {
                r.id: (r.bus, r.feeder_id)
                for r in conn.execute(select(sites.c.id, sites.c.bus, sites.c.feeder_id))
            }
        if any((model.feeder_of_bus(bus) if bus else None) != fid for bus, fid in stored.values()):
            return False
        pos = sandbox.box.monitor.grid.der_bus_pos
        rows = np.flatnonzero(fleet.registered[: len(pos)] & (pos >= 0))
        expected = model.buses["feeder_id"].to_numpy()[pos[rows]]
        actual = np.array([fleet.feeder_ids[f] if f >= 0 else "" for f in fleet.feeder[rows]], dtype=object)
        return bool((np.array([e or "" for e in expected], dtype=object) == actual).all())

    before = sandbox.run(lambda: rt.fleet.feeder.copy())
    r = operator.post("/console/api/switch", json={"switch_id": "switch:0", "closed": False})
    assert r.status_code == 200, r.text
    assert r.json()["sites_moved"] > 0
    assert sandbox.run(mapping_consistent)
    r = operator.post("/console/api/switch", json={"switch_id": "switch:0", "closed": True})
    assert r.status_code == 200 and sandbox.run(mapping_consistent)
    assert np.array_equal(sandbox.run(lambda: rt.fleet.feeder.copy()), before)
    branch = sandbox.run(lambda: rt.network.branches.index[rt.network.branches["kind"] == "line"][5])
    r = operator.post("/console/api/outage", json={"branch_id": branch, "out": True, "note": "maintenance"})
    assert r.status_code == 200 and sandbox.run(mapping_consistent)
    r = operator.post("/console/api/outage", json={"branch_id": branch, "out": False})
    assert r.status_code == 200 and sandbox.run(mapping_consistent)
    assert np.array_equal(sandbox.run(lambda: rt.fleet.feeder.copy()), before)
    actions = [e.action for e in audit_actions(sandbox, "console.")]
    assert actions.count("console.switch") >= 2 and actions.count("console.outage") >= 2
    assert (
        operator.post("/console/api/switch", json={"switch_id": "switch:99999", "closed": False}).status_code
        == 404
    )


def test_opt_out_removes_a_site_from_the_rollup(sandbox: HostedSandbox, operator: httpx.Client) -> None:
    rt = sandbox.box.runtime
    with rt.engine.connect() as conn:
        site_id = conn.execute(select(sites.c.id).order_by(sites.c.id)).first()[0]

    def total() -> int:
        return sum(f["ders"] for f in operator.get("/console/api/state").json()["feeders"])

    n = total()
    r = operator.post("/console/api/opt-out", json={"site_id": site_id, "opt_out": True})
    assert r.status_code == 200 and r.json()["ders"]
    assert total() == n - len(r.json()["ders"])
    assert (
        operator.post("/console/api/opt-out", json={"site_id": site_id, "opt_out": False}).status_code == 200
    )
    assert total() == n
    assert [e.target for e in audit_actions(sandbox, "console.opt_out")][-1] == f"site/{site_id}"


def test_dispatch_a_feeder_then_cancel_a_command(sandbox: HostedSandbox, operator: httpx.Client) -> None:
    r = operator.post(
        "/console/api/dispatch",
        json={"feeder_id": "F1", "target_w": 20_000, "direction": "up", "duration_s": 1800},
    )
    assert r.status_code == 200, r.text
    event = r.json()
    assert event["commands"] >= 1 and event["target_w"] == 20_000
    monitor = sandbox.box.monitor
    ours = sandbox.run(lambda: [c for c in monitor.commands.values() if c.event_id == event["id"]])
    assert ours and all(c.source == "operator:operator" and c.feeder_id == "F1" for c in ours)
    target = ours[0].command_id
    deadline = time.monotonic() + 15
    while sandbox.run(lambda: monitor.commands[target].state) != "active":
        assert time.monotonic() < deadline, "the dispatched command never became active"
        time.sleep(0.2)
    r = operator.post("/console/api/cancel", json={"command_id": target})
    assert r.status_code == 200, r.text
    while sandbox.run(lambda: monitor.commands[target].state) != "superseded":
        assert time.monotonic() < deadline + 15, "the cancelled command was not superseded"
        time.sleep(0.2)
    assert operator.post("/console/api/cancel", json={"command_id": target}).status_code == 422
    entries = audit_actions(sandbox, "console.")
    assert any(e.action == "console.dispatch" and e.detail["id"] == event["id"] for e in entries)
    assert any(e.action == "console.cancel" and e.detail["reason"] == f"cancel {target}" for e in entries)
    events = operator.get("/console/reports/events.csv").text.splitlines()
    assert events[0].startswith("kind,id,feeder_id") and any(event["id"] in line for line in events)


def test_acknowledge_an_alarm(sandbox: HostedSandbox, operator: httpx.Client) -> None:
    alarms = operator.get("/console/api/state").json()["alarms"]
    assert alarms, "the drill and the network's voltages raise alarms"
    alarm_id = alarms[0]["id"]
    r = operator.post("/console/api/ack", json={"alarm_id": alarm_id})
    assert r.status_code == 200 and r.json()["acked_by"] == "operator"
    assert alarm_id not in [a["id"] for a in operator.get("/console/api/state").json()["alarms"]]
    assert any(e.target == f"alarm/{alarm_id}" for e in audit_actions(sandbox, "console.ack"))
    pdf = operator.get("/console/reports/events.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_objectives_from_the_bus_show_per_feeder(sandbox: HostedSandbox, operator: httpx.Client) -> None:
    rt = sandbox.box.runtime
    start = sandbox.run(lambda: rt.clock.now())
    objective = {
        "id": "obj-peak-f0",
        "kind": "peak_reduction",
        "start": start.isoformat(),
        "duration_s": 7200.0,
        "area": {"level": "feeder", "ids": ["F0"]},
        "priority": 10,
        "target_w": 500_000.0,
        "source": "openadr:evt-1",
        "tenant_id": None,
    }
    sandbox.call(rt.bus.publish("objective.created", objective))
    deadline = time.monotonic() + 10
    while True:
        state = operator.get("/console/api/state").json()
        feeders = {f["feeder_id"]: f for f in state["feeders"]}
        if any("obj-peak-f0" in e for e in feeders["F0"]["events"]):
            break
        assert time.monotonic() < deadline, "the objective never showed"
        time.sleep(0.2)
    assert not any("obj-peak-f0" in e for e in feeders["F1"]["events"])
    assert [o["id"] for o in state["objectives"]] == ["obj-peak-f0"]
    assert 'data-objective="obj-peak-f0"' in operator.get("/console/").text
    sandbox.call(rt.bus.publish("objective.cancelled", {"id": "obj-peak-f0"}))
    time.sleep(0.5)
    assert operator.get("/console/api/state").json()["objectives"] == []


def test_orchestrator_commands_are_named_and_can_be_cancelled(
    sandbox: HostedSandbox, operator: httpx.Client
) -> None:
    """A plan solved and dispatched by derms.orchestration's tracker shows as the orchestrator's."""
    rt = sandbox.box.runtime

    async def dispatch_plan() -> list[str]:
        fleet = rt.fleet
        rows = np.flatnonzero(fleet.dispatchable() & (fleet.kind == KIND_CODES[DerKind.HOME_BATTERY]))[:6]
        with rt.engine.connect() as conn:
            ders = [reg.get_der(conn, fleet.der_ids[r], scope=TenantScope.utility()) for r in rows]
        inputs = FleetInput.build(
            [d.id for d in ders],
            kind=kind_code(DerKind.HOME_BATTERY),
            feeder=0,
            bus=0,
            soc=0.6,
            w_max=[d.capabilities.w_max for d in ders],
            w_max_consume=[d.capabilities.w_max_consume for d in ders],
            wh_max=[d.capabilities.wh_max for d in ders],
        )
        prefs = Preferences.build(inputs.n, cost_up=np.linspace(0.05, 0.1, inputs.n), soc_min=0.2)
        problem = Problem.of(
            inputs,
            prefs,
            flexibility(inputs, prefs),
            targets=(Target("evening-peak", np.ones(inputs.n, bool), np.array([4000.0])),),
        )
        solution = solve(problem)
        rec = record(problem)
        now = rt.clock.now()
        plan = to_plan(
            problem,
            solution,
            np.full(problem.n, kind_code(DerKind.HOME_BATTERY)),
            plan_id="plan-console",
            created_at=now,
            start=now,
            inputs_digest=rec.digest,
        )
        tracker = DispatchTracker(rt.engine, rt.bus, rt.bridge, rt.adapters, rt.clock)
        await tracker.start()
        tracker.save_plan(plan, rec, status=solution.status, cost=solution.cost)
        return await tracker.dispatch(plan, {d.id: d for d in ders})

    ids = sandbox.call(dispatch_plan())
    assert ids
    deadline = time.monotonic() + 15
    while True:
        listed = {c["command_id"]: c for c in operator.get("/console/api/commands?limit=500").json()}
        if all(cid in listed for cid in ids):
            break
        assert time.monotonic() < deadline, "the orchestrator's commands never reached the console"
        time.sleep(0.2)
    assert all(listed[cid]["source"] == "orchestrator:plan-console" for cid in ids)
    assert all(listed[cid]["event_id"] == "evening-peak" for cid in ids)
    assert operator.post("/console/api/cancel", json={"command_id": ids[0]}).status_code == 200
    assert any(e.action == "console.cancel" for e in audit_actions(sandbox, "console.cancel"))
