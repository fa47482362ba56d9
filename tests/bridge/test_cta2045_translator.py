"""CTA-2045 translation: levels, quantised durations and watts turned into levels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cta2045.enums import AdvancedLoadUpUnits

from derms.adapters.cta2045 import Action
from derms.bridge.base import Bridge
from derms.bridge.cta2045 import Cta2045Translator, quantise_duration
from derms.core.controls import ActivePowerTarget, ChargeDischarge, LoadLimit, LoadShed, LoadUp
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation

T0 = datetime(2026, 1, 15, 17, tzinfo=UTC)
HEATER = Der(
    "wh", "s", DerKind.WATER_HEATER, Capabilities(w_max_consume=4500.0, wh_max=9000.0), "cta2045", "h:1", "t"
)


def translate(control: object, minutes: float = 60.0):
    setpoint = Setpoint("wh", control, T0, T0 + timedelta(minutes=minutes))  # type: ignore[arg-type]
    return Bridge([Cta2045Translator()]).translate(HEATER, setpoint, "c")


@pytest.mark.parametrize(
    ("level", "action"),
    [(0, Action.END_SHED), (1, Action.SHED), (2, Action.CRITICAL_PEAK), (3, Action.GRID_EMERGENCY)],
)
def test_shed_levels(level: int, action: Action) -> None:
    assert translate(LoadShed(level)).payload.action is action


def test_duration_is_quantised_to_two_n_squared_seconds() -> None:
    command = translate(LoadShed(1), minutes=10)
    assert command.payload.duration_s == 578.0  # n = 17: 2·17² s
    (loss,) = command.losses
    assert (loss.field, loss.requested, loss.delivered, loss.unit) == ("duration_s", 600.0, 578.0, "s")
    assert quantise_duration(2 * 254**2 + 10_000) is None  # too long: held until End Shed
    long = translate(LoadShed(1), minutes=3000)
    assert long.payload.duration_s is None and "End Shed" in long.notes[0]


def test_exact_duration_has_no_loss() -> None:
    assert translate(LoadUp(1), minutes=2 * 30**2 / 60).losses == ()


def test_advanced_load_up_asks_for_storage_capacity_in_fitting_units() -> None:
    command = translate(LoadUp(2), minutes=90.5)
    assert (command.payload.action, command.payload.value, command.payload.units) == (
        Action.ADVANCED_LOAD_UP,
        9000,
        AdvancedLoadUpUnits.Wh_1,
    )
    assert command.payload.minutes == 90  # whole minutes, rounded half to even
    assert [x.field for x in command.losses] == ["duration_s"]


def test_watt_target_becomes_a_level_with_the_loss_explicit() -> None:
    shed = translate(ActivePowerTarget(w=-1000.0))
    assert shed.payload.action is Action.SHED
    assert [(x.field, x.requested, x.delivered) for x in shed.losses][-1] == ("p_w", -1000.0, 0.0)
    up = translate(ActivePowerTarget(w=-4000.0))
    assert up.payload.action is Action.LOAD_UP
    assert up.losses[-1].delivered == -4500.0


def test_load_limit_becomes_whole_percent_power_level() -> None:
    command = translate(LoadLimit(w=1000.0))
    assert (command.payload.action, command.payload.percent) == (Action.POWER_LEVEL, 22)
    assert command.losses[0].delivered == pytest.approx(990.0)


def test_refuses_controls_and_limits_it_cannot_carry() -> None:
    with pytest.raises(LimitViolation, match="cannot carry charge_discharge"):
        translate(ChargeDischarge(w=-100.0))
    with pytest.raises(LimitViolation, match="exceeds w_max_consume"):
        translate(ActivePowerTarget(w=-9000.0))
