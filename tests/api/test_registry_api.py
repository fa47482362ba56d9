import json

import pytest

from derms.store import audit
from tests.api.conftest import Api

PROBLEM = "application/problem+json"


def der_body(der_id: str, site_id: str, kind: str = "home_battery") -> dict:
    return {
        "id": der_id,
        "site_id": site_id,
        "kind": kind,
        "protocol": "sim",
        "address": der_id,
        "capabilities": {
            "w_max": 5000,
            "w_max_consume": 5000,
            "wh_max": 13500,
            "controls": ["charge_discharge"],
        },
    }


async def populate(api: Api) -> None:
    for tenant, user in (("agg-a", "a-op"), ("agg-b", "b-op")):
        c = api.client
        r = await c.post("/api/v1/customers", json={"id": f"c-{tenant}", "name": "Jo"}, headers=api.as_(user))
        assert r.status_code == 201, r.text
        site = {
            "id": f"s-{tenant}",
            "customer_id": f"c-{tenant}",
            "latitude": 48.0,
            "longitude": 7.8,
            "feeder_id": "f1",
            "bus": "12",
        }
        assert (await c.post("/api/v1/sites", json=site, headers=api.as_(user))).status_code == 201
        ders = [der_body(f"d-{tenant}-{i}", f"s-{tenant}") for i in range(3)]
        r = await c.post("/api/v1/ders", json=ders, headers=api.as_(user))
        assert r.status_code == 201, r.text


async def test_authentication_required_everywhere(api: Api) -> None:
    for method, path in [
        ("GET", "/api/v1/ders"),
        ("GET", "/api/v1/feeders"),
        ("POST", "/api/v1/customers"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/audit"),
    ]:
        r = await api.client.request(method, path)
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
        assert r.headers["www-authenticate"] == "Bearer"
    r = await api.client.get("/api/v1/ders", headers={"Authorization": "Bearer derms_not-a-token"})
    assert r.status_code == 401 and r.json()["status"] == 401
    assert (await api.client.get("/health")).json() == {"status": "ok"}
    assert (await api.client.get("/openapi.json")).json()["info"]["title"] == "derms"


async def test_viewer_cannot_write_and_nothing_changes(api: Api) -> None:
    with api.runtime.engine.connect() as conn:
        before = audit.count(conn)
    r = await api.client.post(
        "/api/v1/customers", json={"id": "c1", "name": "x", "tenant_id": "agg-a"}, headers=api.as_("viewer")
    )
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM and "operator" in r.json()["detail"]
    assert (await api.client.get("/api/v1/customers", headers=api.as_("admin"))).json() == []
    with api.runtime.engine.connect() as conn:
        assert audit.count(conn) == before


async def test_aggregators_are_isolated(api: Api) -> None:
    await populate(api)
    mine = (await api.client.get("/api/v1/ders", headers=api.as_("a-op"))).json()
    assert {d["tenant_id"] for d in mine} == {"agg-a"} and len(mine) == 3
    assert (await api.client.get("/api/v1/ders/d-agg-b-0", headers=api.as_("a-op"))).status_code == 404
    assert (await api.client.get("/api/v1/sites/s-agg-b", headers=api.as_("a-op"))).status_code == 404
    r = await api.client.post("/api/v1/ders", json=[der_body("intruder", "s-agg-b")], headers=api.as_("a-op"))
    assert r.status_code == 404
    r = await api.client.post(
        "/api/v1/customers", json={"id": "c9", "name": "x", "tenant_id": "agg-b"}, headers=api.as_("a-op")
    )
    assert r.status_code == 403
    assert (
        len((await api.client.get("/api/v1/ders", headers=api.as_("viewer"))).json()) == 6
    )  # utility sees all
    feeders = (await api.client.get("/api/v1/feeders", headers=api.as_("b-op"))).json()
    assert sum(f["ders"] for f in feeders) == 3
    audit_a = (await api.client.get("/api/v1/audit", headers=api.as_("a-admin"))).json()
    assert audit_a and {e["tenant_id"] for e in audit_a} == {"agg-a"}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/customers", b'{"id": "c1", "name": '),  # truncated JSON
        ("/api/v1/customers", b'{"id": "bad id with spaces", "name": "x"}'),
        ("/api/v1/customers", b'{"id": "c1", "name": "x", "unexpected": 1}'),
        ("/api/v1/sites", json.dumps({"id": "s1", "customer_id": "c-agg-a", "latitude": 200}).encode()),
        ("/api/v1/ders", json.dumps([{**der_body("x", "s-agg-a"), "kind": "toaster"}]).encode()),
        ("/api/v1/ders", json.dumps([der_body("y", "s-agg-a") | {"capabilities": {"w_max": -5}}]).encode()),
        ("/api/v1/ders", json.dumps([der_body("d-agg-a-0", "s-agg-a")]).encode()),  # already exists
    ],
)
async def test_malformed_input_gets_problem_and_changes_nothing(api: Api, path: str, body: bytes) -> None:
    await populate(api)
    with api.runtime.engine.connect() as conn:
        before = audit.count(conn)
    ders_before = (await api.client.get("/api/v1/ders", headers=api.as_("admin"))).json()
    headers = {**api.as_("a-op"), "content-type": "application/json"}
    r = await api.client.post(path, content=body, headers=headers)
    assert 400 <= r.status_code < 500 and r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["status"] == r.status_code and problem["title"] and problem["detail"]
    assert (await api.client.get("/api/v1/ders", headers=api.as_("admin"))).json() == ders_before
    with api.runtime.engine.connect() as conn:
        assert audit.count(conn) == before


async def test_every_write_is_audited(api: Api) -> None:
    await populate(api)
    site = {"id": "s-agg-a", "customer_id": "c-agg-a", "feeder_id": "f2", "bus": "40"}
    assert (
        await api.client.put("/api/v1/sites/s-agg-a", json=site, headers=api.as_("a-op"))
    ).status_code == 200
    assert (await api.client.delete("/api/v1/ders/d-agg-a-2", headers=api.as_("operator"))).status_code == 204
    entries = (await api.client.get("/api/v1/audit", headers=api.as_("admin"))).json()
    actions = [e["action"] for e in entries]
    assert actions.count("customer.create") == 2 and actions.count("site.create") == 2
    assert actions.count("der.create") == 6
    assert actions[-2:] == ["site.update", "der.delete"]
    assert entries[-1]["actor"] == "operator" and entries[-1]["target"] == "der/d-agg-a-2"
    with api.runtime.engine.connect() as conn:
        assert audit.verify_chain(conn) is None
    history = (await api.client.get("/api/v1/ders/d-agg-a-2/history", headers=api.as_("viewer"))).json()
    assert [h["action"] for h in history] == ["create", "delete"]
    feeders = {
        f["feeder_id"]: f for f in (await api.client.get("/api/v1/feeders", headers=api.as_("viewer"))).json()
    }
    assert feeders["f2"]["ders"] == 2  # the site moved feeders; its decommissioned DER is gone


async def test_telemetry_ingest_rollups_and_queries(api: Api) -> None:
    await populate(api)
    samples = [
        {"der_id": f"d-agg-a-{i}", "ts": "2026-07-15T12:00:00+00:00", "p_w": 1000.0 * (i + 1), "soc": 0.5}
        for i in range(3)
    ]
    r = await api.client.post("/api/v1/telemetry", json={"samples": samples}, headers=api.as_("a-op"))
    assert r.status_code == 202
    r = await api.client.post(
        "/api/v1/telemetry",
        json={"samples": [{**samples[0], "der_id": "d-agg-b-0"}]},
        headers=api.as_("a-op"),
    )
    assert r.status_code == 422  # another tenant's DER
    await api.runtime.bus.drain()
    await api.runtime.tracker.flush()
    fleet = (await api.client.get("/api/v1/fleet", headers=api.as_("a-op"))).json()
    assert fleet["online"] == 3 and fleet["p_w"] == 6000.0
    assert fleet["flex_up_w"] == pytest.approx(3 * 5000 - 6000)
    latest = (await api.client.get("/api/v1/telemetry/latest", headers=api.as_("a-op"))).json()
    assert [x["p_w"] for x in latest] == [1000.0, 2000.0, 3000.0]
    assert (await api.client.get("/api/v1/telemetry/latest", headers=api.as_("b-op"))).json() == []
    series = (
        await api.client.get(
            "/api/v1/ders/d-agg-a-1/telemetry",
            headers=api.as_("viewer"),
            params={"start": "2026-07-15T11:00:00Z", "end": "2026-07-15T13:00:00Z"},
        )
    ).json()
    assert series[0]["p_w"] == 2000.0 and series[0]["q_var"] is None
    buckets = (
        await api.client.get(
            "/api/v1/ders/d-agg-a-1/telemetry",
            headers=api.as_("viewer"),
            params={"start": "2026-07-15T11:00:00Z", "end": "2026-07-15T13:00:00Z", "interval_s": 900},
        )
    ).json()
    assert buckets[0]["n"] == 1 and buckets[0]["p_avg"] == 2000.0
    metrics = (await api.client.get("/metrics", headers=api.as_("viewer"))).text
    assert "derms_fleet_online 3.0" in metrics


async def test_admin_creates_user_with_token(api: Api) -> None:
    r = await api.client.post(
        "/api/v1/users", json={"username": "newbie", "role": 1}, headers=api.as_("a-admin")
    )
    assert r.status_code == 201
    token = r.json()["token"]
    r = await api.client.get("/api/v1/ders", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    r = await api.client.post(
        "/api/v1/users", json={"username": "x", "role": 3, "tenant_id": "agg-b"}, headers=api.as_("a-admin")
    )
    assert r.status_code == 403


async def test_device_reported_capabilities_update_the_registry(api: Api) -> None:
    await populate(api)
    caps = {"w_max": 7600.0, "w_max_consume": 7600.0, "wh_max": 20000.0, "controls": ["charge_discharge"]}
    await api.runtime.bus.publish(
        "der.status.sim",
        {"der_id": "d-agg-a-1", "online": True, "detail": "discovered", "capabilities": caps},
    )
    await api.runtime.bus.publish(
        "der.status.ocpp",
        {"der_id": "d-agg-a-2", "online": True, "detail": "discovered", "capabilities": caps},
    )
    await api.runtime.bus.drain()
    der = (await api.client.get("/api/v1/ders/d-agg-a-1", headers=api.as_("viewer"))).json()
    assert der["capabilities"]["w_max"] == 7600.0
    history = (await api.client.get("/api/v1/ders/d-agg-a-1/history", headers=api.as_("viewer"))).json()
    assert history[-1]["actor"] == "adapter:sim" and history[-1]["before"]["capabilities"]["w_max"] == 5000
    assert api.runtime.fleet.w_max[api.runtime.fleet.index["d-agg-a-1"]] == 7600.0
    other = (await api.client.get("/api/v1/ders/d-agg-a-2", headers=api.as_("viewer"))).json()
    assert other["capabilities"]["w_max"] == 5000  # another protocol cannot rewrite a sim DER
