"""DNP3 MESA-DER translation: scaling to transmission integers, mode enables, refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from derms.adapters.dnp3.master import OperateMode, ValueKind
from derms.bridge.dnp3 import Dnp3Translator
from derms.core.controls import (
    ActivePowerLimit,
    Connect,
    FixedPowerFactor,
    FixedReactivePower,
    GenerationLimit,
    LoadShed,
)
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation

T0 = datetime(2026, 7, 1, tzinfo=UTC)
PLANT = Der("p", "s", DerKind.UTILITY_PV, Capabilities(w_max=5e6), "dnp3", "h:20000/10", "t")


def translate(control: object, translator: Dnp3Translator | None = None):
    setpoint = Setpoint("p", control, T0, T0 + timedelta(hours=1))  # type: ignore[arg-type]
    return (translator or Dnp3Translator()).translate(PLANT, setpoint, "c")


def test_limit_percent_is_quantised_to_a_tenth_and_enabled() -> None:
    command = translate(ActivePowerLimit(pct=72.36))
    (ao,) = command.payload.analogs
    assert (ao.index, ao.value) == (87, 724)  # DWMX.WLimPct, 0.1 % per count
    assert command.losses[0].delivered == pytest.approx(72.4)
    assert [(c.index, c.code) for c in command.payload.crobs] == [(17, 0x03)]  # DWMX.Mod latch on
    assert (ValueKind.ANALOG_INPUT, 148, 724.0) in command.payload.verify
    assert command.payload.mode is OperateMode.SELECT_BEFORE_OPERATE
    assert [(c.index, c.code) for c in command.payload.revert] == [(17, 0x04)]  # latched off at the end


def test_exact_values_have_no_loss_and_pf_sets_excitation() -> None:
    assert translate(FixedReactivePower(var=-120_000)).losses == ()
    command = translate(FixedPowerFactor(pf=0.9, absorbing=True))
    assert command.losses == ()
    assert [(c.index, c.code) for c in command.payload.crobs] == [(10, 0x03), (28, 0x03)]


def test_connect_off_is_a_latch_off_and_direct_operate_is_selectable() -> None:
    command = translate(Connect(connected=False), Dnp3Translator(mode=OperateMode.DIRECT_OPERATE))
    assert [(c.index, c.code) for c in command.payload.crobs] == [(5, 0x04)]
    assert [(c.index, c.code) for c in command.payload.revert] == [(5, 0x03)]  # reconnect at the end
    assert command.payload.mode is OperateMode.DIRECT_OPERATE


def test_out_of_profile_range_and_unsupported_controls_are_refused() -> None:
    with pytest.raises(LimitViolation, match="cannot carry load_shed"):
        translate(LoadShed(1))
    with pytest.raises(LimitViolation, match="32-bit range"):
        translate(GenerationLimit(w=3e9))  # DWMX.WLimSpt carries signed 32-bit watts
    assert translate(FixedPowerFactor(pf=1.0)).payload.analogs[0].value == 100
