"""A battery's state-of-charge reserve (SunSpec MinRsvPct) is registered through the API, read
back and planned around; out-of-range values are refused."""

import numpy as np

from derms.core.der import DerKind
from derms.fleet.state import KIND_CODES
from derms.orchestration import live
from derms.orchestration.inputs import FleetInput
from derms.store import registry as reg
from derms.store.scope import TenantScope
from tests.api.conftest import Api


async def test_battery_declares_its_reserve(api: Api) -> None:
    c, me = api.client, api.as_("a-op")
    assert (await c.post("/api/v1/customers", json={"id": "c1", "name": "Jo"}, headers=me)).status_code == 201
    site = {"id": "s1", "customer_id": "c1", "feeder_id": "f1", "bus": "12"}
    assert (await c.post("/api/v1/sites", json=site, headers=me)).status_code == 201
    caps = {
        "w_max": 5000,
        "w_max_consume": 5000,
        "wh_max": 13500,
        "round_trip_efficiency": 0.9,
        "soc_reserve": 0.2,
    }
    body = {"id": "bat-1", "site_id": "s1", "kind": "home_battery", "protocol": "sim", "address": "bat-1"}
    r = await c.post("/api/v1/ders", json=[body | {"capabilities": caps}], headers=me)
    assert r.status_code == 201, r.text
    got = (await c.get("/api/v1/ders/bat-1", headers=me)).json()["capabilities"]
    assert {k: got[k] for k in caps} == caps
    for bad_value in (1.0, -0.1):
        bad = body | {"id": "bat-2", "capabilities": caps | {"soc_reserve": bad_value}}
        r = await c.post("/api/v1/ders", json=[bad], headers=me)
        assert r.status_code == 422 and "soc_reserve" in r.text

    # The planner keeps it as the battery's lowest state of charge, with its one-way efficiency.
    with api.runtime.engine.connect() as conn:
        der = reg.get_der(conn, "bat-1", scope=TenantScope.utility())
    fleet = FleetInput.build(
        ["bat-1"], kind=KIND_CODES[DerKind.HOME_BATTERY], soc=0.5, w_max=5000.0, wh_max=13500.0
    )
    eta, reserve = live.storage_terms(fleet, {"bat-1": der})
    assert reserve.tolist() == [0.2] and np.allclose(eta, np.sqrt(0.9))
