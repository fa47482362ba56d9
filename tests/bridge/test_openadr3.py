"""Setpoints → OpenADR 3.0.1 events for 3.0.1 VENs (payload types, units, targets, losses, refusals)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from derms.adapters.openadr.oadr3.models import Event
from derms.bridge import Bridge
from derms.bridge.openadr import Oadr3Route, OpenAdrTranslator
from derms.bridge.openadr3 import iso_duration
from derms.core.controls import (
    ActivePowerTarget,
    GenerationLimit,
    ImportExportLimit,
    LoadLimit,
    LoadShed,
    LoadUp,
    PriceSignal,
)
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Reason, Setpoint
from derms.core.errors import LimitViolation

T = datetime(2026, 7, 15, 17, 0, tzinfo=UTC)
LOAD = Der(
    "d1", "s", DerKind.HOME_BATTERY, Capabilities(w_max=5e4, w_max_consume=8e4), "openadr", "ven-3/bat-1", "t"
)
OLD = Der("d2", "s", DerKind.CI_LOAD, Capabilities(w_max_consume=8e4), "openadr", "ven-2b/load-1", "t")


def bridge() -> Bridge:
    route = Oadr3Route(speaks=lambda ven: ven == "ven-3", program_id=lambda: "prog-1")
    return Bridge([OpenAdrTranslator("http://mc", resolution_kw=0.01, priority=2, oadr3=route)])


def send(der: Der, control, minutes: int = 30):  # type: ignore[no-untyped-def]
    sp = Setpoint(der.id, control, T, T + timedelta(minutes=minutes), Reason(None, "operator", "test"))
    return bridge().translate(der, sp, "cmd-1")


@pytest.mark.parametrize(
    ("control", "payloads", "units"),
    [
        (LoadShed(level=2), [("SIMPLE", 2)], [None]),
        (LoadLimit(w=40_000), [("IMPORT_CAPACITY_LIMIT", 40.0)], ["KW"]),
        (GenerationLimit(w=12_500), [("EXPORT_CAPACITY_LIMIT", 12.5)], ["KW"]),
        (
            ImportExportLimit(import_w=30_000, export_w=5_000),
            [("IMPORT_CAPACITY_LIMIT", 30.0), ("EXPORT_CAPACITY_LIMIT", 5.0)],
            ["KW", "KW"],
        ),
        (ActivePowerTarget(w=-20_000), [("DISPATCH_SETPOINT", 20.0)], ["KW"]),
        (ActivePowerTarget(w=10_000), [("DISPATCH_SETPOINT", -10.0)], ["KW"]),
        (PriceSignal(price_per_kwh=0.31, currency="EUR"), [("PRICE", 0.31)], ["KWH"]),
    ],
)
def test_controls_become_301_payloads(control, payloads, units) -> None:  # type: ignore[no-untyped-def]
    command = send(LOAD, control)
    event = command.payload
    assert isinstance(event, Event) and command.protocol == "openadr" and command.losses == ()
    assert event.program_id == "prog-1" and event.event_name == "cmd-1" and event.priority == 2
    assert [(t.type, t.values) for t in event.targets or []] == [
        ("VEN_NAME", ["ven-3"]),
        ("RESOURCE_NAME", ["bat-1"]),
    ]
    assert event.interval_period is not None and event.interval_period.start == T
    assert event.interval_period.duration == "PT30M"
    assert [(p.type, p.values[0]) for p in event.intervals[0].payloads] == payloads
    assert [d.units for d in event.payload_descriptors or []] == units
    assert [d.payload_type for d in event.report_descriptors or []] == ["USAGE"]
    if isinstance(control, PriceSignal):
        assert (event.payload_descriptors or [])[0].currency == "EUR"
    # the wire form validates as a 3.0.1 event
    assert Event.model_validate(event.wire()) == event


def test_quantisation_is_reported() -> None:
    command = send(LOAD, LoadLimit(w=40_004.0))
    assert command.payload.intervals[0].payloads[0].values == [40.0]
    [loss] = command.losses
    assert (loss.field, loss.requested, loss.delivered, loss.unit) == (
        "IMPORT_CAPACITY_LIMIT",
        40.004,
        40.0,
        "kW",
    )


def test_refusals() -> None:
    with pytest.raises(LimitViolation, match="no event payload type"):
        send(LOAD, LoadUp(level=1))
    with pytest.raises(LimitViolation, match="w_max_consume"):
        send(LOAD, LoadLimit(w=90_000))
    with pytest.raises(LimitViolation, match="exceeds w_max"):
        send(LOAD, ActivePowerTarget(w=60_000))


def test_other_vens_keep_20b() -> None:
    command = send(OLD, LoadShed(level=1))
    assert type(command.payload).__module__.endswith("oadr20b.model")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "PT0S"),
        (timedelta(hours=1), "PT1H"),
        (timedelta(minutes=90, seconds=1.5), "PT1H30M1.5S"),
    ],
)
def test_iso_duration(value: timedelta, text: str) -> None:
    assert iso_duration(value) == text
