"""OCPP translation: units, phases, stack level, quantisation and refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from derms.adapters.ocpp import ProfilePurpose, RateUnit, SetProfileCommand
from derms.bridge.base import Bridge
from derms.bridge.ocpp import OcppTranslator
from derms.core.controls import ActivePowerTarget, ChargingLimit, LoadLimit, LoadShed
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation

T0 = datetime(2026, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def charger(address: str = "CP7/2", phases: int = 3, rating: float = 11_000) -> Der:
    return Der(id="ev", site_id="s", kind=DerKind.EV_CHARGER, protocol="ocpp", address=address, tenant_id="t",
               capabilities=Capabilities(w_max_consume=rating, phases=phases, v_nom=230))  # fmt: skip


def translate(control: object, der: Der | None = None, **kw: object) -> SetProfileCommand:
    der = der or charger()
    command = OcppTranslator(**kw).translate(  # type: ignore[arg-type]
        der,
        Setpoint("ev", control, T0, T0 + timedelta(minutes=15)),
        "cmd",  # type: ignore[arg-type]
    )
    return command.payload, command  # type: ignore[return-value]


def test_watts_on_an_evse_become_a_tx_default_profile() -> None:
    payload, command = translate(ChargingLimit(limit=7400.04, unit="W"), stack_level=4)
    assert payload.evse_id == 2
    profile = payload.profile
    assert profile.purpose is ProfilePurpose.TX_DEFAULT and profile.stack_level == 4
    assert profile.unit is RateUnit.W and profile.periods[0].limit == 7400.0
    assert profile.start == T0.replace(microsecond=0) and profile.duration_s == 901
    assert [(loss.requested, loss.delivered, loss.unit) for loss in command.losses] == [
        (7400.04, 7400.0, "W")
    ]
    assert command.notes and "whole seconds" in command.notes[0]


def test_amps_keep_phases_and_the_station_address_sets_the_maximum() -> None:
    payload, command = translate(ChargingLimit(limit=13.0, unit="A", phases=1), charger("CP7"))
    assert payload.evse_id == 0 and payload.profile.purpose is ProfilePurpose.STATION_MAX
    assert payload.profile.unit is RateUnit.A and payload.profile.periods[0].phases == 1
    assert command.losses == ()


def test_watts_sent_as_amps_report_their_loss_in_watts() -> None:
    payload, command = translate(LoadLimit(w=5000), unit_for=lambda der, control: RateUnit.A)
    assert payload.profile.periods[0].limit == pytest.approx(7.2)  # 5000 / (230 * 3) = 7.246 A
    (loss,) = command.losses
    assert loss.unit == "W" and loss.delivered == pytest.approx(7.2 * 690)


def test_refusals_name_the_limit() -> None:
    with pytest.raises(LimitViolation, match="exceeds the charger rating"):
        translate(ChargingLimit(limit=32.0, unit="A"))
    with pytest.raises(LimitViolation, match="IEC 61851-1"):
        translate(ChargingLimit(limit=3.0, unit="A"))
    with pytest.raises(LimitViolation, match="3 phases requested; the charger has 1"):
        translate(ChargingLimit(limit=10.0, unit="A", phases=3), charger(phases=1))
    with pytest.raises(LimitViolation, match="discharge"):
        translate(ActivePowerTarget(w=1000))
    with pytest.raises(LimitViolation, match="not supported"):
        translate(LoadShed(level=2))


def test_bridge_checks_generic_limits_first() -> None:
    bridge = Bridge([OcppTranslator()])
    with pytest.raises(LimitViolation, match="charger rating 11000"):
        bridge.translate(charger(), Setpoint("ev", ChargingLimit(limit=20_000), T0, T0 + timedelta(hours=1)))
    native = bridge.translate(
        charger(), Setpoint("ev", ActivePowerTarget(w=-3000), T0, T0 + timedelta(hours=1))
    )
    assert native.payload.profile.periods[0].limit == 3000.0
