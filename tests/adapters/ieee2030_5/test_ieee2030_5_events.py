"""Event rules (IEEE 2030.5-2018 12.1.3): status transitions, superseding, cancellation, responses."""

from __future__ import annotations

import pytest
from lxml import etree

from derms.adapters.ieee2030_5.events import EventStatusCode, event_state, list_order
from derms.adapters.ieee2030_5.records import ControlRecord
from derms.adapters.ieee2030_5.schema import ActivePower, DERControlBase
from derms.core.der import Capabilities, Der, DerKind
from tests.adapters.ieee2030_5.sep2_harness import Harness

NS = {"s": "urn:ieee:std:2030.5:ns"}


def control(
    cid: int, start: int, duration: int, created: int, program: int = 1, **modes: object
) -> ControlRecord:
    base = DERControlBase(**(modes or {"opModMaxLimW": 5000}))  # type: ignore[arg-type]
    return ControlRecord(cid, program, f"{cid:032X}", "", created, start, duration, base)


def test_scheduled_then_active_then_listed_until_retention() -> None:
    c = control(1, 100, 50, 0)
    assert event_state(c, 99, [c]).status is EventStatusCode.SCHEDULED
    assert event_state(c, 100, [c]).status is EventStatusCode.ACTIVE
    assert event_state(c, 149, [c]).changed == 100


def test_later_overlapping_event_in_same_program_supersedes() -> None:
    old, new = control(1, 100, 100, 0), control(2, 150, 100, 10)
    assert event_state(old, 0, [old, new]).status is EventStatusCode.SUPERSEDED
    assert event_state(old, 0, [old, new]).changed == 10
    assert event_state(new, 0, [old, new]).status is EventStatusCode.SCHEDULED


@pytest.mark.parametrize(
    ("new", "superseded"),
    [
        (control(2, 200, 100, 10), False),  # no overlap (ends exactly where the other starts)
        (control(2, 150, 100, 10, opModConnect=True), False),  # overlapping, different mode
        (control(2, 150, 100, 10, opModConnect=True, opModMaxLimW=1), True),  # shares a mode
    ],
)
def test_superseding_needs_overlap_and_a_shared_mode(new: ControlRecord, superseded: bool) -> None:
    old = control(1, 100, 100, 0)
    assert (event_state(old, 0, [old, new]).status is EventStatusCode.SUPERSEDED) is superseded


def test_other_programs_only_flag_potential_superseding() -> None:
    mine, theirs = control(1, 100, 100, 0), control(2, 150, 100, 5, program=2)
    state = event_state(mine, 0, [mine], [theirs])
    assert state.status is EventStatusCode.SCHEDULED
    assert state.potentially_superseded and state.potentially_superseded_time == 5


def test_cancelled_with_and_without_randomization() -> None:
    c = control(1, 100, 100, 0)
    c.cancelled_time = 120
    assert event_state(c, 130, [c]).status is EventStatusCode.CANCELLED
    c.randomize_start, c.cancel_randomized = 30, True
    assert event_state(c, 130, [c]).status is EventStatusCode.CANCELLED_WITH_RANDOMIZATION


def test_cancelled_event_does_not_supersede() -> None:
    old, new = control(1, 100, 100, 0), control(2, 150, 100, 10)
    new.cancelled_time = 20
    assert event_state(old, 0, [old, new]).status is EventStatusCode.SCHEDULED


def test_list_order_start_then_newest_creation() -> None:
    a, b, c = control(1, 200, 10, 0), control(2, 100, 10, 0), control(3, 100, 10, 5)
    assert [x.id for x in list_order([a, b, c])] == [3, 2, 1]


async def test_server_publishes_transitions_and_responses_drive_command_states(harness: Harness) -> None:
    from derms.adapters.base import NativeCommand
    from derms.adapters.ieee2030_5.native import DerControlCommand

    der = Der(
        "der-a",
        "s",
        DerKind.PV_INVERTER,
        Capabilities(w_max=5000),
        "ieee2030_5",
        harness.lfdi("dev-a"),
        "default",
    )
    await harness.adapter.register_device(der)
    edev = harness.adapter.repo.end_device_by_der("der-a")
    now = harness.clock.now()
    from datetime import timedelta

    def command(cid: str, start_s: int, watts: int) -> NativeCommand:
        return NativeCommand(
            cid,
            "der-a",
            "ieee2030_5",
            DerControlCommand(
                DERControlBase(opModExpLimW=ActivePower(value=watts, multiplier=0)), randomize_start=10
            ),
            now + timedelta(seconds=start_s),
            now + timedelta(seconds=start_s + 600),
        )

    await harness.adapter.send(command("c1", 60, 1000))
    await harness.adapter.send(command("c2", 300, 2000))  # overlaps c1, same program → supersedes it
    await harness.adapter.send(command("c3", 2000, 3000))
    program_id = harness.adapter._dispatch_programs[edev.id]
    c3 = harness.adapter.repo.control_by_mrid(
        next(c.mrid for c in harness.adapter.repo.controls_of(program_id) if c.command_id == "c3")
    )
    assert c3 is not None
    await harness.adapter.manager.cancel_control(c3.id, randomized=True)
    path = f"/edev/{edev.id}/derp/{program_id}/derc?l=10"
    async with harness.client("dev-a") as client:
        listed = etree.fromstring((await client.get(path)).content)
        status = {
            el.findtext("s:description", namespaces=NS): int(
                el.findtext("s:EventStatus/s:currentStatus", namespaces=NS)
            )
            for el in listed.findall("s:DERControl", NS)
        }
        assert status == {"derms command c1": 4, "derms command c2": 0, "derms command c3": 3}
        harness.clock.advance(400)
        listed = etree.fromstring((await client.get(path)).content)
        c2 = next(
            el
            for el in listed.findall("s:DERControl", NS)
            if el.findtext("s:description", namespaces=NS).endswith("c2")
        )
        assert c2.findtext("s:EventStatus/s:currentStatus", namespaces=NS) == "1"
        mrid = c2.findtext("s:mRID", namespaces=NS)
        for code in (1, 2):
            body = (
                f'<DERControlResponse xmlns="urn:ieee:std:2030.5:ns"><createdDateTime>0</createdDateTime>'
                f"<endDeviceLFDI>{harness.lfdi('dev-a')}</endDeviceLFDI><status>{code}</status><subject>{mrid}</subject>"
                "</DERControlResponse>"
            )
            assert (await client.post(c2.get("replyTo"), content=body)).status_code == 201
        bad = body.replace("<status>2</status>", "<status>99</status>")
        assert (await client.post(c2.get("replyTo"), content=bad)).status_code == 400
        async with harness.client("dev-b") as other:
            assert (await other.post(c2.get("replyTo"), content=body)).status_code == 400
        dcap = etree.fromstring((await client.get("/dcap")).content)
        sets = etree.fromstring(
            (await client.get(dcap.find("s:ResponseSetListLink", NS).get("href"))).content
        )  # type: ignore[union-attr]
        response_set = etree.fromstring(
            (await client.get(sets.find("s:ResponseSet", NS).get("href"))).content
        )  # type: ignore[union-attr]
        assert response_set.find("s:ResponseListLink", NS).get("href") == c2.get("replyTo")  # type: ignore[union-attr]
        responses = etree.fromstring((await client.get("/rsps/1/rsp?l=10")).content)
        assert responses.get("all") == "2"
    states = [(m["command_id"], m["state"]) for m in await harness.published("command.state")]
    assert ("c1", "superseded") in states and ("c3", "cancelled") in states
    assert [s for c, s in states if c == "c2"] == ["sent", "acknowledged", "active"]


def test_every_der_response_status_of_table_27_maps_to_a_command_state() -> None:
    from envoy_schema.server.schema.sep2.response import ResponseType

    from derms.adapters.ieee2030_5.manager import RESPONSE_STATES

    assert set(RESPONSE_STATES) == {int(t) for t in ResponseType}
