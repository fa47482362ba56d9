"""A thermostat's thermal parameters (1R1C R and C, COP) are registered through the API and
read back; out-of-range values are refused."""

from tests.api.conftest import Api


async def test_thermostat_declares_its_house(api: Api) -> None:
    c, me = api.client, api.as_("a-op")
    assert (await c.post("/api/v1/customers", json={"id": "c1", "name": "Jo"}, headers=me)).status_code == 201
    site = {"id": "s1", "customer_id": "c1", "feeder_id": "f1", "bus": "12"}
    assert (await c.post("/api/v1/sites", json=site, headers=me)).status_code == 201
    caps = {"w_max_consume": 3500, "r_k_per_w": 0.0025, "c_j_per_k": 4.0e7, "cop": 3.2}
    body = {"id": "th-1", "site_id": "s1", "kind": "thermostat", "protocol": "sim", "address": "th-1"}
    r = await c.post("/api/v1/ders", json=[body | {"capabilities": caps}], headers=me)
    assert r.status_code == 201, r.text
    got = (await c.get("/api/v1/ders/th-1", headers=me)).json()["capabilities"]
    assert {k: got[k] for k in caps} == caps
    bad = body | {"id": "th-2", "capabilities": caps | {"cop": 0}}
    r = await c.post("/api/v1/ders", json=[bad], headers=me)
    assert r.status_code == 422 and "cop" in r.text
