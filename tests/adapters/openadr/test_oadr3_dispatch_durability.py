"""Platform commands as 3.0.1 events when storage fails and across a restart: a refused
write reports FAILED and creates nothing; commands in flight survive a restart, so the VEN's
report afterwards still acknowledges them and the clock still completes them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select, text

from derms.adapters.base import AdapterContext
from derms.adapters.openadr.adapter import OpenAdrVtnAdapter, create_adapter
from derms.adapters.openadr.oadr3.commands import commands
from derms.adapters.openadr.oadr3.store import objects
from derms.adapters.openadr.settings import Oadr3Client, OpenAdrSettings
from derms.bridge.openadr import OpenAdrTranslator
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.core.controls import LoadShed
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Reason, Setpoint
from derms.core.events import COMMAND_STATE
from derms.sim.protocols.openadr.load import SimulatedCiLoad
from derms.sim.protocols.openadr.ven3 import CiLoadVen3

NOON = datetime(2026, 7, 15, 13, 0, tzinfo=UTC)
SETTINGS = OpenAdrSettings(
    port=0,
    oadr3_enabled=True,
    oadr3_port=0,
    oadr3_clients=[Oadr3Client(client_id="v", client_secret="s", role="VEN", ven_name="ci-3")],
    status_tick_s=0.02,
)
DER = Der("d", "s", DerKind.CI_LOAD, Capabilities(w_max_consume=2e5), "openadr", "ci-3/load-1", "utility")


async def until(check: Callable[[], bool], limit_s: float = 5.0) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


class Rig:
    """A bus recording every command state, and OpenADR adapters on one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.clock = ManualClock(NOON)
        self.bus = MemoryBus(self.clock)
        self.states: list[tuple[str, str, str]] = []
        """(command id, state, detail) in the order published."""

    async def start(self) -> None:
        await self.bus.start()

        async def on_state(msg) -> None:  # type: ignore[no-untyped-def]
            self.states.append((msg.data["command_id"], msg.data["state"], msg.data["detail"]))

        await self.bus.subscribe(COMMAND_STATE, on_state)

    async def adapter(self, tick_s: float = 0.02) -> OpenAdrVtnAdapter:
        settings = SETTINGS.model_copy(update={"status_tick_s": tick_s})
        adapter = create_adapter(AdapterContext(self.bus, self.clock, "openadr"), settings, self.engine)
        await adapter.register_device(DER)
        return adapter

    async def send(self, adapter: OpenAdrVtnAdapter, command_id: str, level: int = 1) -> None:
        setpoint = Setpoint(
            "d", LoadShed(level=level), NOON, NOON + timedelta(hours=1), Reason(None, "op", "t")
        )
        command = OpenAdrTranslator.for_adapter(SETTINGS, adapter).translate(DER, setpoint, command_id)
        await adapter.send(command)
        await self.bus.drain()

    def rows(self, table, where=None) -> int:  # type: ignore[no-untyped-def]
        query = select(func.count()).select_from(table)
        if where is not None:
            query = query.where(where)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())


async def test_storage_failure_reports_failed_and_creates_nothing(sqlite_engine: Engine) -> None:
    rig = Rig(sqlite_engine)
    await rig.start()
    adapter = await rig.adapter()
    assert adapter.vtn3 is not None
    adapter.dispatch_program_id()  # the program exists; only the command's own writes are at stake
    # the command record cannot be written: the event written in the same transaction goes too
    with sqlite_engine.begin() as conn:
        conn.execute(text("DROP TABLE openadr3_command"))
    await rig.send(adapter, "cmd-1")
    [(command_id, state, detail)] = rig.states
    assert (command_id, state) == ("cmd-1", "failed")
    assert detail == "storage failed, no event created: OperationalError"
    assert adapter.vtn3.objects["EVENT"] == {} and adapter.dispatch3 is not None
    assert adapter.dispatch3.sent == {}
    assert rig.rows(objects, objects.c.kind == "EVENT") == 0
    assert adapter.vtn3.webhooks.pending() == []
    # the database goes entirely: still FAILED, still nothing in memory
    with sqlite_engine.begin() as conn:
        conn.execute(text("DROP TABLE openadr3_object"))
    await rig.send(adapter, "cmd-2")
    assert rig.states[-1][:2] == ("cmd-2", "failed") and adapter.vtn3.objects["EVENT"] == {}
    await rig.bus.close()


async def test_restart_mid_command_keeps_reporting_its_states(db_engine: Engine) -> None:
    rig = Rig(db_engine)
    await rig.start()
    first = await rig.adapter()
    await first.start()
    ven = CiLoadVen3(first.url3, "v", "s", "ci-3", rig.clock, SimulatedCiLoad(seed=4))
    try:
        await ven.connect()
        await rig.send(first, "cmd-1")
        await rig.send(first, "cmd-2", level=2)
        await first.cancel("cmd-2")
        await ven.poll()
        [event] = ven.events
        assert event["eventName"] == "cmd-1"
        await first.stop()  # the platform restarts while cmd-1 is in flight
        assert rig.rows(commands) == 1

        second = await rig.adapter()
        assert second.dispatch3 is not None and list(second.dispatch3.sent) == ["cmd-1"]
        await second.start()
        try:
            ven.base_url = second.url3
            await ven.connect()  # a new token; its VEN object and resource were kept
            await ven.poll()
            assert [e["id"] for e in ven.events] == [event["id"]]
            rig.clock.advance(60)
            ven.step(60.0)
            assert await ven.report() == 1
            await until(lambda: [s for c, s, _ in rig.states if c == "cmd-1"][-1] == "active")
            rig.clock.advance(3600)
            await until(lambda: rig.states[-1][1] == "completed")
        finally:
            await second.stop()
    finally:
        await ven.close()
    assert [(c, s) for c, s, _ in rig.states] == [
        ("cmd-1", "sent"),
        ("cmd-2", "sent"),
        ("cmd-2", "cancelled"),
        ("cmd-1", "acknowledged"),
        ("cmd-1", "active"),
        ("cmd-1", "completed"),
    ]
    assert rig.rows(commands) == 0  # finished commands leave no record
    await rig.bus.close()


async def test_an_acknowledgement_not_stored_is_reported_again_after_restart(sqlite_engine: Engine) -> None:
    rig = Rig(sqlite_engine)
    await rig.start()
    first = await rig.adapter(tick_s=60.0)  # its clock-driven states would come after the restart
    await first.start()
    ven = CiLoadVen3(first.url3, "v", "s", "ci-3", rig.clock, SimulatedCiLoad(seed=4))
    try:
        await ven.connect()
        await rig.send(first, "cmd-1")
        with sqlite_engine.begin() as conn:  # command states can no longer be stored
            conn.execute(
                text(
                    "CREATE TRIGGER no_state BEFORE UPDATE ON openadr3_command "
                    "BEGIN SELECT RAISE(ABORT, 'read-only'); END"
                )
            )
        await ven.poll()
        assert await ven.report() == 1
        await until(lambda: rig.states[-1][1] == "acknowledged")  # reported all the same
        await first.stop()
        with sqlite_engine.begin() as conn:
            conn.execute(text("DROP TRIGGER no_state"))
        second = await rig.adapter()
        await second.start()
        try:
            await until(lambda: rig.states[-1][1] == "active")
        finally:
            await second.stop()
    finally:
        await ven.close()
    # at least once: the stored state was SENT, the report on the VTN acknowledges it again
    assert [s for _, s, _ in rig.states] == ["sent", "acknowledged", "acknowledged", "active"]
    await rig.bus.close()
