"""OpenADR 3.0.1 VTN: tokens, object-level authorisation, problems, notifications."""

from __future__ import annotations

import httpx
import pytest

from derms.adapters.openadr.oadr3.app import BASE_PATH, build
from derms.adapters.openadr.oadr3.auth import Client
from derms.core.clock import ManualClock
from tests.adapters.openadr.openadr_samples import T0

CLIENTS = [
    Client("bl", "bl-s", "BL"),
    Client("a", "a-s", "VEN", "ven-a"),
    Client("b", "b-s", "VEN", "ven-b"),
]


@pytest.fixture
async def vtn3():
    clock = ManualClock(T0)
    app, vtn, _issuer = build(CLIENTS, clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"http://vtn{BASE_PATH}"
    ) as http:
        tokens = {}
        for cid, secret in (("bl", "bl-s"), ("a", "a-s"), ("b", "b-s")):
            r = await http.post(
                "/auth/token",
                data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
            )
            tokens[cid] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        yield http, vtn, tokens, clock


async def test_token_errors(vtn3):
    http, _, _, _clock = vtn3
    bad = await http.post(
        "/auth/token", data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "x"}
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    grant = await http.post(
        "/auth/token", data={"grant_type": "password", "client_id": "a", "client_secret": "a-s"}
    )
    assert grant.json()["error"] == "unsupported_grant_type"
    scope = await http.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "a",
            "client_secret": "a-s",
            "scope": "write_events",
        },
    )
    assert scope.json()["error"] == "invalid_scope"


async def test_token_expiry(vtn3):
    http, _, tokens, clock = vtn3
    assert (await http.get("/programs", headers=tokens["bl"])).status_code == 200
    clock.advance(3601)
    r = await http.get("/programs", headers=tokens["bl"])
    assert r.status_code == 403 and r.json()["title"] == "Forbidden"


async def test_object_level_authorisation(vtn3):
    http, _vtn, t, _ = vtn3
    program = (await http.post("/programs", json={"programName": "p"}, headers=t["bl"])).json()
    targeted = {
        "programID": program["id"],
        "targets": [{"type": "GROUP", "values": ["north"]}],
        "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [2]}]}],
    }
    open_event = {
        "programID": program["id"],
        "intervals": [{"id": 0, "payloads": [{"type": "PRICE", "values": [0.3]}]}],
    }
    ev_group = (await http.post("/events", json=targeted, headers=t["bl"])).json()
    ev_all = (await http.post("/events", json=open_event, headers=t["bl"])).json()
    # unregistered VENs see nothing at all
    assert (await http.get("/events", headers=t["a"])).json() == []
    assert (await http.get("/programs", headers=t["a"])).json() == []
    ven_a = (
        await http.post(
            "/vens",
            json={"venName": "ven-a", "targets": [{"type": "GROUP", "values": ["north"]}]},
            headers=t["a"],
        )
    ).json()
    ven_b = (await http.post("/vens", json={"venName": "ven-b"}, headers=t["b"])).json()
    assert {e["id"] for e in (await http.get("/events", headers=t["a"])).json()} == {
        ev_group["id"],
        ev_all["id"],
    }
    assert {e["id"] for e in (await http.get("/events", headers=t["b"])).json()} == {ev_all["id"]}
    assert (await http.get(f"/events/{ev_group['id']}", headers=t["b"])).status_code == 404
    # VENs see and change only their own VEN objects and resources
    assert [v["venName"] for v in (await http.get("/vens", headers=t["a"])).json()] == ["ven-a"]
    assert (await http.get(f"/vens/{ven_b['id']}", headers=t["a"])).status_code == 404
    assert (
        await http.post(f"/vens/{ven_b['id']}/resources", json={"resourceName": "x"}, headers=t["a"])
    ).status_code == 403
    r = await http.post(f"/vens/{ven_a['id']}/resources", json={"resourceName": "load-1"}, headers=t["a"])
    assert r.status_code == 201 and r.json()["venID"] == ven_a["id"]
    # reports: own clientName only, only for events addressed to the VEN; others cannot read them
    report = {
        "programID": program["id"],
        "eventID": ev_group["id"],
        "clientName": "ven-b",
        "resources": [
            {"resourceName": "x", "intervals": [{"id": 0, "payloads": [{"type": "USAGE", "values": [1]}]}]}
        ],
    }
    assert (await http.post("/reports", json=report, headers=t["b"])).status_code == 403
    assert (
        await http.post("/reports", json={**report, "clientName": "ven-a"}, headers=t["b"])
    ).status_code == 403
    r = await http.post("/reports", json={**report, "clientName": "ven-a"}, headers=t["a"])
    assert r.status_code == 201
    assert (await http.get("/reports", headers=t["b"])).json() == []
    assert len((await http.get("/reports", headers=t["bl"])).json()) == 1
    # VENs cannot write programs or events; duplicate names conflict
    assert (await http.post("/programs", json={"programName": "q"}, headers=t["a"])).status_code == 403
    assert (await http.post("/programs", json={"programName": "p"}, headers=t["bl"])).status_code == 409
    assert (await http.post("/vens", json={"venName": "ven-a"}, headers=t["bl"])).status_code == 409


async def test_malformed_bodies_change_nothing(vtn3):
    http, vtn, t, _ = vtn3
    program = (await http.post("/programs", json={"programName": "p"}, headers=t["bl"])).json()
    before = {k: dict(v) for k, v in vtn.objects.items()}
    for body in (
        b"{",
        b"[]",
        b'{"programID": "p"}',
        b'{"programID": "bad id!", "intervals": []}',
        b"\xff\xfe",
    ):
        r = await http.post("/events", content=body, headers={**t["bl"], "content-type": "application/json"})
        assert r.status_code == 400, body
        problem = r.json()
        assert problem["status"] == 400 and problem["type"] == "about:blank" and problem["detail"]
    bad_duration = {
        "programID": program["id"],
        "intervalPeriod": {"start": T0.isoformat(), "duration": "1 hour"},
        "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
    }
    assert (await http.post("/events", json=bad_duration, headers=t["bl"])).status_code == 400
    unknown_program = {
        "programID": "nope",
        "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
    }
    assert (await http.post("/events", json=unknown_program, headers=t["bl"])).status_code == 404
    assert (await http.get("/events", params={"limit": 51}, headers=t["bl"])).status_code == 400
    assert {k: dict(v) for k, v in vtn.objects.items()} == before


async def test_notifications_respect_visibility(vtn3):
    http, vtn, t, _ = vtn3
    program = (await http.post("/programs", json={"programName": "p"}, headers=t["bl"])).json()
    await http.post("/vens", json={"venName": "ven-a"}, headers=t["a"])
    await http.post("/vens", json={"venName": "ven-b"}, headers=t["b"])
    for who in ("a", "b"):
        sub = {
            "clientName": f"ven-{who}",
            "programID": program["id"],
            "objectOperations": [
                {
                    "objects": ["EVENT"],
                    "operations": ["CREATE", "DELETE"],
                    "callbackUrl": f"http://127.0.0.1:9/{who}",
                }
            ],
        }
        assert (await http.post("/subscriptions", json=sub, headers=t[who])).status_code == 201
    event = {
        "programID": program["id"],
        "targets": [{"type": "VEN_NAME", "values": ["ven-a"]}],
        "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
    }
    created = (await http.post("/events", json=event, headers=t["bl"])).json()
    await http.delete(f"/events/{created['id']}", headers=t["bl"])
    assert [(h.url, h.notification["operation"]) for h in vtn.webhooks.pending()] == [
        ("http://127.0.0.1:9/a", "POST"),
        ("http://127.0.0.1:9/a", "DELETE"),
    ]
    # another VEN's subscriptions stay invisible
    assert [s["clientName"] for s in (await http.get("/subscriptions", headers=t["a"])).json()] == ["ven-a"]


async def test_targets_are_additive_and_unknown_types_show_nothing(vtn3):
    http, _vtn, t, _ = vtn3
    program = (await http.post("/programs", json={"programName": "p"}, headers=t["bl"])).json()
    ven = (await http.post("/vens", json={"venName": "ven-a"}, headers=t["a"])).json()
    await http.post(f"/vens/{ven['id']}/resources", json={"resourceName": "load-1"}, headers=t["a"])
    await http.post("/vens", json={"venName": "ven-b"}, headers=t["b"])
    intervals = [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}]

    async def event(*targets: tuple[str, str]) -> str:
        body = {
            "programID": program["id"],
            "targets": [{"type": k, "values": [v]} for k, v in targets],
            "intervals": intervals,
        }
        return (await http.post("/events", json=body, headers=t["bl"])).json()["id"]

    both = await event(("VEN_NAME", "ven-a"), ("RESOURCE_NAME", "load-1"))
    wrong_resource = await event(("VEN_NAME", "ven-a"), ("RESOURCE_NAME", "load-2"))
    by_resource = await event(("RESOURCE_NAME", "load-1"))
    unknown = await event(("POWER_SERVICE_LOCATION", "x"))
    seen_a = {e["id"] for e in (await http.get("/events", headers=t["a"])).json()}
    assert seen_a == {both, by_resource}
    assert {e["id"] for e in (await http.get("/events", headers=t["bl"])).json()} >= {wrong_resource, unknown}
    assert (await http.get("/events", headers=t["b"])).json() == []
