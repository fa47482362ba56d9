"""Objectives through the API: an operator's objective becomes a plan whose setpoints reach the
simulated devices and are acknowledged; roles, tenants, bad input and the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from derms.api.app import create_app
from derms.core.events import decode_objective
from derms.orchestration import live
from derms.store.schema import audit_log, objectives
from tests.api.conftest import Api
from tests.orchestration.service_rig import START, Rig, start_rig


@pytest.fixture
async def rig(sqlite_engine: Engine) -> AsyncIterator[tuple[Rig, httpx.AsyncClient]]:
    rig = await start_rig(sqlite_engine)
    transport = httpx.ASGITransport(app=create_app(rig.runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://derms.test") as client:
        yield rig, client
    await rig.runtime.stop()


def peak(target_w: float, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "peak_reduction",
        "start": START.isoformat(),
        "duration_s": 3 * 3600,
        "area": {"level": "feeder", "ids": ["F0"]},
        "target_w": target_w,
        **extra,
    }


def counts(rig: Rig) -> tuple[int, int]:
    with rig.runtime.engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(objectives)).scalar_one(),
            conn.execute(select(func.count()).select_from(audit_log)).scalar_one(),
        )


async def test_operator_objective_is_planned_sent_and_acknowledged(
    rig: tuple[Rig, httpx.AsyncClient],
) -> None:
    r, client = rig
    service = r.service
    base = live.baseline_p(r.runtime.fleet, {})
    where = live.areas(r.runtime.fleet, r.model)
    probe = decode_objective({**peak(0.0), "id": "probe", "duration_s": 60.0})
    importing = live.area_import_w(probe, r.runtime.fleet, where, r.model, base)
    target = importing - 30e3  # ask for 30 kW less import on feeder F0
    resp = await client.post(
        "/api/v1/objectives", json=peak(target, id="evening-peak"), headers=r.header("operator")
    )
    assert resp.status_code == 202, resp.text
    assert resp.json()["tenant_id"] is None and resp.json()["source"] == "operator:operator"

    await service.step()
    await r.drain()
    out = service.last_outcome
    assert out is not None and out.plan.objective_ids == ("evening-peak",)
    assert out.solution.shortfall_w["evening-peak"][0] == pytest.approx(0.0, abs=1.0)
    detail = (await client.get("/api/v1/objectives/evening-peak", headers=r.header("viewer"))).json()
    assert detail["plans"] == [out.plan.id]
    plan = (await client.get(f"/api/v1/plans/{out.plan.id}", headers=r.header("viewer"))).json()
    assert plan["setpoints"] == len(plan["commands"]) == len(out.plan.setpoints) > 0
    assert {c["state"] for c in plan["commands"]} == {"active"}
    assert all(c["objective_id"] == "evening-peak" for c in plan["commands"])
    assert service.command_counts()["acknowledged_ever"] == len(plan["commands"])
    # The simulated devices took the setpoints.
    await r.settle(180.0)
    power = r.sim.fleet.power()
    measured = {c["der_id"]: float(power[r.sim.fleet.row(c["der_id"])]) for c in plan["commands"]}
    # The service's delivery rule: one-sided, within 2 % of a large C&I load's own drift.
    short = service.tracker.measure(
        measured,
        tolerance_w=service.options.tolerance_w,
        baseline_w=service._baselines(),
        tolerance_share=service.options.tolerance_share,
    )
    assert len(measured) == len(plan["commands"]) and short == []

    with r.runtime.engine.connect() as conn:
        actions = [
            (row.action, row.actor, row.target)
            for row in conn.execute(select(audit_log).order_by(audit_log.c.seq))
        ]
    assert ("objective.create", "operator", "objective/evening-peak") in actions
    assert ("orchestration.plan", "orchestrator", f"plan/{out.plan.id}") in actions
    listed = (await client.get("/api/v1/objectives", headers=r.header("viewer"))).json()
    assert [o["id"] for o in listed] == ["evening-peak"]
    again = await client.post(
        "/api/v1/objectives", json=peak(target, id="evening-peak"), headers=r.header("operator")
    )
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"


async def test_viewer_cannot_post_and_bad_objectives_change_nothing(
    rig: tuple[Rig, httpx.AsyncClient],
) -> None:
    r, client = rig
    before = counts(r)
    viewer = await client.post("/api/v1/objectives", json=peak(1e6), headers=r.header("viewer"))
    assert viewer.status_code == 403
    bad = [
        {k: v for k, v in peak(1e6).items() if k != "target_w"},  # peak reduction needs a target
        peak(1e6, area={"level": "feeder", "ids": ["F9"]}),  # unknown feeder
        peak(1e6, start="2026-07-15T22:00:00"),  # naive time
        peak(1e6, duration_s=-5),
        peak(1e6, colour="red"),  # unknown field
        peak(1e6, area={"level": "group", "ids": ["no-such-der"]}),
        {**peak(1e6), "kind": "arbitrage"},  # arbitrage needs prices
    ]
    for body in bad:
        resp = await client.post("/api/v1/objectives", json=body, headers=r.header("operator"))
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.json()["status"] == 422
    assert counts(r) == before
    await r.service.step()
    assert r.service.plans == 0 and not r.service.objectives


async def test_aggregator_objective_moves_only_its_own_ders(rig: tuple[Rig, httpx.AsyncClient]) -> None:
    r, client = rig
    body = {
        "id": "a-capacity",
        "kind": "capacity_target",
        "start": START.isoformat(),
        "duration_s": timedelta(hours=1).total_seconds(),
        "target_w": 15e3,
    }
    resp = await client.post("/api/v1/objectives", json=body, headers=r.header("a-op"))
    assert resp.status_code == 202 and resp.json()["tenant_id"] == "agg-a"
    await r.service.step()
    out = r.service.last_outcome
    assert out is not None and out.plan.setpoints
    tenant = {d.id: d.tenant_id for d in r.ders}
    assert {tenant[s.der_id] for s in out.plan.setpoints} == {"agg-a"}
    assert (await client.get("/api/v1/objectives", headers=r.header("b-op"))).json() == []
    assert (await client.get(f"/api/v1/plans/{out.plan.id}", headers=r.header("b-op"))).status_code == 404
    mine = (await client.get(f"/api/v1/plans/{out.plan.id}", headers=r.header("a-op"))).json()
    assert len(mine["commands"]) == len(out.plan.setpoints)


async def test_without_a_grid_model_objectives_are_refused(api: Api) -> None:
    """No grid model, no orchestration: 503 problem+json, nothing stored."""
    resp = await api.client.post("/api/v1/objectives", json=peak(1e6), headers=api.as_("operator"))
    assert resp.status_code == 503 and resp.headers["content-type"] == "application/problem+json"
    assert (await api.client.get("/api/v1/objectives", headers=api.as_("viewer"))).json() == []
    missing = await api.client.get("/api/v1/plans/nope", headers=api.as_("viewer"))
    assert missing.status_code == 404 and missing.json()["status"] == 404
