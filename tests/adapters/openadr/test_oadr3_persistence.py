"""The 3.0.1 VTN's objects survive a restart (SQLite and PostgreSQL through ``db_engine``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import Engine, func, select, text

from derms.adapters.openadr.oadr3.app import BASE_PATH, build
from derms.adapters.openadr.oadr3.auth import Client
from derms.adapters.openadr.oadr3.store import Vtn3Store, objects
from derms.adapters.openadr.oadr3.vtn import Vtn3
from derms.core.clock import ManualClock
from tests.adapters.openadr.openadr_samples import T0

CLIENTS = [Client("bl", "bl-s", "BL"), Client("a", "a-s", "VEN", "ven-a"), Client("b", "b-s", "VEN", "ven-b")]


@asynccontextmanager
async def vtn_on(engine: Engine, clock: ManualClock) -> AsyncIterator[tuple[httpx.AsyncClient, Vtn3, dict]]:
    """A VTN process on ``engine``: reloads what is stored, hands out fresh tokens."""
    app, vtn, _ = build(CLIENTS, clock, Vtn3Store(engine))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://vtn{BASE_PATH}") as http:
        tokens = {}
        for cid, secret in (("bl", "bl-s"), ("a", "a-s"), ("b", "b-s")):
            form = {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}
            token = (await http.post("/auth/token", data=form)).json()["access_token"]
            tokens[cid] = {"Authorization": f"Bearer {token}"}
        yield http, vtn, tokens


def snapshot(vtn: Vtn3) -> dict[str, list[tuple[str, str, dict]]]:
    return {k: [(i, o.owner, o.obj.wire()) for i, o in v.items()] for k, v in vtn.objects.items()}


async def test_oadr3_objects_survive_restart(db_engine: Engine) -> None:
    clock = ManualClock(T0)
    async with vtn_on(db_engine, clock) as (http, vtn, t):
        program = (
            await http.post(
                "/programs",
                json={
                    "programName": "dr",
                    "payloadDescriptors": [
                        {"objectType": "EVENT_PAYLOAD_DESCRIPTOR", "payloadType": "PRICE", "currency": "USD"}
                    ],
                },
                headers=t["bl"],
            )
        ).json()
        ven_a = (
            await http.post(
                "/vens",
                json={"venName": "ven-a", "targets": [{"type": "GROUP", "values": ["north"]}]},
                headers=t["a"],
            )
        ).json()
        await http.post("/vens", json={"venName": "ven-b"}, headers=t["b"])
        r = await http.post(f"/vens/{ven_a['id']}/resources", json={"resourceName": "load-1"}, headers=t["a"])
        assert r.status_code == 201
        event = {
            "programID": program["id"],
            "eventName": "shed",
            "priority": 2,
            "targets": [{"type": "GROUP", "values": ["north"]}],
            "payloadDescriptors": [{"payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW"}],
            "intervalPeriod": {"start": T0.isoformat(), "duration": "PT1H"},
            "intervals": [{"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [40.5]}]}],
        }
        ev = (await http.post("/events", json=event, headers=t["bl"])).json()
        gone = (await http.post("/events", json={**event, "eventName": "gone"}, headers=t["bl"])).json()
        clock.advance(60)
        changed = {**event, "priority": 1}
        assert (await http.put(f"/events/{ev['id']}", json=changed, headers=t["bl"])).status_code == 200
        assert (await http.delete(f"/events/{gone['id']}", headers=t["bl"])).status_code == 200
        sub = {
            "clientName": "ven-a",
            "programID": program["id"],
            "objectOperations": [
                {"objects": ["EVENT"], "operations": ["CREATE"], "callbackUrl": "http://127.0.0.1:9/a"}
            ],
        }
        assert (await http.post("/subscriptions", json=sub, headers=t["a"])).status_code == 201
        report = {
            "programID": program["id"],
            "eventID": ev["id"],
            "clientName": "ven-a",
            "payloadDescriptors": [{"payloadType": "USAGE", "units": "KW", "readingType": "DIRECT_READ"}],
            "resources": [
                {
                    "resourceName": "load-1",
                    "intervals": [{"id": 0, "payloads": [{"type": "USAGE", "values": [38]}]}],
                }
            ],
        }
        assert (await http.post("/reports", json=report, headers=t["a"])).status_code == 201
        # bad input is refused and stores nothing
        with db_engine.connect() as conn:
            rows = conn.execute(select(func.count()).select_from(objects)).scalar_one()
        r = await http.post(
            "/events", content=b'{"programID": ', headers={**t["bl"], "content-type": "application/json"}
        )
        assert r.status_code == 400
        before = snapshot(vtn)

    async with vtn_on(db_engine, clock) as (http, again, t):
        assert snapshot(again) == before
        with db_engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(objects)).scalar_one() == rows == 7
        # object-level authorisation holds after the restart: ven-a sees its event, ven-b does not
        seen = (await http.get("/events", headers=t["a"])).json()
        assert [(e["id"], e["priority"]) for e in seen] == [(ev["id"], 1)]
        assert (await http.get("/events", headers=t["b"])).json() == []
        assert (await http.get(f"/events/{gone['id']}", headers=t["bl"])).status_code == 404
        assert [s["clientName"] for s in (await http.get("/subscriptions", headers=t["a"])).json()] == [
            "ven-a"
        ]
        assert (await http.get("/subscriptions", headers=t["b"])).json() == []
        # the restored subscription is notified of new events
        await http.post("/events", json={**event, "eventName": "next"}, headers=t["bl"])
        [hook] = again.webhooks.pending()
        assert hook.url == "http://127.0.0.1:9/a" and hook.notification["object"]["eventName"] == "next"


async def test_storage_failure_answers_503_and_changes_nothing(sqlite_engine: Engine) -> None:
    clock = ManualClock(T0)
    async with vtn_on(sqlite_engine, clock) as (http, vtn, t):
        program = (await http.post("/programs", json={"programName": "dr"}, headers=t["bl"])).json()
        with sqlite_engine.begin() as conn:
            conn.execute(text("DROP TABLE openadr3_object"))
        before = snapshot(vtn)
        event = {
            "programID": program["id"],
            "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [1]}]}],
        }
        r = await http.post("/events", json=event, headers=t["bl"])
        assert r.status_code == 503 and r.json()["status"] == 503 and "nothing changed" in r.json()["detail"]
        assert (await http.delete(f"/programs/{program['id']}", headers=t["bl"])).status_code == 503
        assert snapshot(vtn) == before
        assert vtn.webhooks.pending() == []
