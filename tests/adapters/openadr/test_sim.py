"""Simulated C&I VENs (2.0b and 3.0.1) shed under events from our VTNs, over loopback HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from derms.adapters.openadr.oadr3.app import BASE_PATH, build
from derms.adapters.openadr.oadr3.auth import Client
from derms.adapters.openadr.oadr20b.model import POWER_REAL_KW, Event, EventSignal, Interval
from derms.adapters.openadr.oadr20b.server import HttpServer, make_app
from derms.adapters.openadr.oadr20b.vocabulary import EventStatus, OptType, SignalName, SignalType
from derms.adapters.openadr.oadr20b.vtn import Vtn
from derms.core.clock import ManualClock
from derms.sim.protocols.openadr.load import Command, SimulatedCiLoad
from derms.sim.protocols.openadr.ven3 import CiLoadVen3
from derms.sim.protocols.openadr.ven20b import CiLoadVen20b

NOON = datetime(2026, 7, 15, 13, 0, tzinfo=UTC)


class Values:
    def __init__(self) -> None:
        self.points: list[tuple[str, float]] = []

    async def ven_registered(self, ven):
        pass

    async def ven_cancelled(self, ven):
        pass

    async def event_response(self, ven, event, opt_type):
        pass

    async def report_values(self, ven, points):
        self.points += [(d.r_id, v.value) for d, v in points]


def test_load_physics_follows_commands():
    base, shed, capped = SimulatedCiLoad(seed=1), SimulatedCiLoad(seed=1), SimulatedCiLoad(seed=1)
    p0 = base.step(NOON, 60, Command())
    p3 = shed.step(NOON, 60, Command(shed_level=3))
    pc = capped.step(NOON, 60, Command(limit_w=100_000.0))
    assert p0 < p3 < 0  # shedding consumes less (p_w negative = consumption)
    assert p3 == pytest.approx(p0 * (1 - 0.3))  # level 3 sheds the whole flexible share
    assert pc == pytest.approx(max(p0, -100_000.0))


async def test_ven20b_sheds_and_reports():
    clock = ManualClock(NOON)
    values = Values()
    vtn = Vtn("VTN", clock, listener=values, report_granularity=timedelta(seconds=5))
    server = HttpServer(make_app(vtn))
    await server.start()
    sim = CiLoadVen20b(f"{server.url}/OpenADR2/Simple/2.0b", "sim-ci-1", clock, SimulatedCiLoad(seed=2))
    try:
        baseline = sim.step(1.0)
        vtn.create_event(
            Event(
                "cap",
                0,
                "http://mc",
                NOON,
                EventStatus.ACTIVE,
                NOON,
                timedelta(hours=1),
                (
                    EventSignal(
                        SignalName.LOAD_DISPATCH,
                        SignalType.SETPOINT,
                        "s",
                        (Interval(timedelta(hours=1), 90.0),),
                        item=POWER_REAL_KW,
                    ),
                ),
            )
        )
        await sim.client.register()
        await sim.client.register_reports()
        await sim.client.request_events()
        assert vtn.opt_state("cap", sim.client.ven_id).opt_type is OptType.OPT_IN
        clock.advance(60)
        p = sim.step(60.0)
        assert -p <= 90_000.0 + 1e-6 < -baseline
        assert await sim.client.send_due_reports() == 2
        usage = [v for r, v in values.points if r == "p"]
        assert usage == [-p / 1000.0]
        assert ("online", 1.0) in values.points
    finally:
        await sim.client.close()
        await server.stop()


async def test_ven3_sheds_and_reports():
    clock = ManualClock(NOON)
    app, _, _ = build([Client("bl", "s", "BL"), Client("ci", "c", "VEN", "sim-ci-3")], clock)
    server = HttpServer(app)
    await server.start()
    base = f"{server.url}{BASE_PATH}"
    sim = CiLoadVen3(base, "ci", "c", "sim-ci-3", clock, SimulatedCiLoad(seed=3))
    try:
        async with httpx.AsyncClient() as http:
            token = (
                await http.post(
                    f"{base}/auth/token",
                    data={"grant_type": "client_credentials", "client_id": "bl", "client_secret": "s"},
                )
            ).json()["access_token"]
            bl = {"Authorization": f"Bearer {token}"}
            program = (await http.post(f"{base}/programs", json={"programName": "cap"}, headers=bl)).json()
            await sim.connect()
            event = {
                "programID": program["id"],
                "targets": [{"type": "RESOURCE_NAME", "values": ["load-1"]}],
                "intervalPeriod": {"start": NOON.isoformat(), "duration": "PT1H"},
                "intervals": [{"id": 0, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [80]}]}],
            }
            assert (await http.post(f"{base}/events", json=event, headers=bl)).status_code == 201
            await sim.poll()
            assert len(sim.events) == 1
            clock.advance(60)
            p = sim.step(60.0)
            assert -p <= 80_000.0 + 1e-6
            assert await sim.report() == 1
            reports = (await http.get(f"{base}/reports", headers=bl)).json()
            assert reports[0]["clientName"] == "sim-ci-3"
            assert reports[0]["resources"][0]["intervals"][0]["payloads"][0]["values"] == [-p / 1000.0]
    finally:
        await sim.close()
        await server.stop()


async def test_ven3_takes_a_new_token_when_its_token_expires():
    """The VTN's bearer tokens last an hour of platform time (``expires_in``); a VEN that keeps
    polling past that must take a new token rather than be refused from then on."""
    clock = ManualClock(NOON)
    app, _, _ = build([Client("ci", "c", "VEN", "sim-ci-3")], clock)
    server = HttpServer(app)
    await server.start()
    sim = CiLoadVen3(f"{server.url}{BASE_PATH}", "ci", "c", "sim-ci-3", clock, SimulatedCiLoad(seed=3))
    try:
        await sim.connect()
        first = sim.headers["Authorization"]
        clock.advance(2 * 3600)
        await sim.poll()
        assert sim.headers["Authorization"] != first and sim.events == []
    finally:
        await sim.close()
        await server.stop()
