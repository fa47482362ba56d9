"""Setpoint → DERControl: multipliers, hundredths of a percent, curves, and reported precision loss."""

from __future__ import annotations

from datetime import timedelta

import pytest

from derms.adapters.ieee2030_5.native import DerControlCommand
from derms.adapters.ieee2030_5.schema import ActivePower, DERControlBase
from derms.bridge import Bridge
from derms.bridge.ieee2030_5 import Ieee2030_5Translator, encode_power
from derms.core.controls import (
    ActivePowerLimit,
    ChargeDischarge,
    CurvePoint,
    FixedPowerFactor,
    ImportExportLimit,
    LoadShed,
    VoltVarCurve,
    WattPowerFactorCurve,
)
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation, ValidationFailed
from tests.adapters.ieee2030_5.sep2_harness import T0

DER = Der(
    "d1",
    "s1",
    DerKind.UTILITY_BATTERY,
    Capabilities(w_max=2_000_000, w_max_consume=2_000_000, var_max_inject=1e6),
    "ieee2030_5",
    "AB" * 20,
    "t",
)


def translate(control: object) -> tuple[DerControlCommand, tuple]:
    setpoint = Setpoint("d1", control, T0, T0 + timedelta(minutes=15))  # type: ignore[arg-type]
    command = Bridge([Ieee2030_5Translator()]).translate(DER, setpoint, "c1")
    assert isinstance(command.payload, DerControlCommand)
    return command.payload, command.losses


@pytest.mark.parametrize(
    ("watts", "value", "multiplier", "lost"),
    [
        (1500.0, 1500, 0, False),
        (-32767.0, -32767, 0, False),
        (1_234_567.0, 12346, 2, True),
        (12.4, 12, 0, True),
    ],
)
def test_power_uses_the_smallest_multiplier_that_fits_int16(
    watts: float, value: int, multiplier: int, lost: bool
) -> None:
    losses: list = []
    assert encode_power("opModTargetW", watts, losses) == (value, multiplier)
    assert bool(losses) is lost
    if lost:
        assert losses[0].delivered == value * 10**multiplier and losses[0].requested == watts


def test_storage_setpoint_and_doe_limits() -> None:
    payload, losses = translate(ChargeDischarge(-1_234_567.0))
    assert payload.base.opModTargetW == ActivePower(value=-12346, multiplier=2)
    assert losses[0].field == "opModTargetW" and losses[0].error == pytest.approx(-33.0)
    payload, losses = translate(ImportExportLimit(import_w=5000.0, export_w=1500.0))
    assert payload.base.opModImpLimW == ActivePower(value=5000, multiplier=0)
    assert payload.base.opModExpLimW == ActivePower(value=1500, multiplier=0)
    assert losses == ()


def test_percent_and_power_factor_quantisation_is_reported() -> None:
    payload, losses = translate(ActivePowerLimit(55.555))
    assert payload.base.opModMaxLimW == 5556 and losses[0].delivered == pytest.approx(55.56)
    payload, losses = translate(FixedPowerFactor(0.9505, absorbing=True))
    pf = payload.base.opModFixedPFInjectW
    assert (pf.displacement, pf.multiplier, pf.excitation) == (950, -3, True)  # type: ignore[union-attr]
    assert losses[0].field == "opModFixedPFInjectW"


def test_curves_become_dercurves_in_percent() -> None:
    payload, losses = translate(VoltVarCurve((CurvePoint(0.92, 0.3), CurvePoint(1.08, -0.3))))
    assert (
        payload.curve is not None and payload.curve.mode == "opModVoltVar" and payload.curve.curve_type == 11
    )
    assert payload.curve.points == ((92.0, 30.0), (108.0, -30.0)) and payload.curve.y_ref_type == 2
    payload, _ = translate(WattPowerFactorCurve((CurvePoint(0.5, 1.0), CurvePoint(1.0, -0.95))))
    assert payload.curve is not None and payload.curve.excitation == (False, True)
    assert payload.curve.points[1] == (100.0, 0.95)
    assert losses == ()


def test_controls_outside_the_der_function_set_are_refused() -> None:
    with pytest.raises(LimitViolation, match="cannot carry"):
        translate(LoadShed(2))


async def test_out_of_range_multipliers_are_refused_by_the_server() -> None:
    from derms.adapters.base import AdapterContext
    from derms.adapters.ieee2030_5 import Ieee2030_5Settings, create_adapter
    from derms.bus import MemoryBus
    from derms.core.clock import ManualClock

    clock = ManualClock(T0)
    adapter = create_adapter(
        AdapterContext(MemoryBus(clock), clock, "ieee2030_5"), Ieee2030_5Settings(port=0)
    )
    program = adapter.manager.create_program("t", "p", 1)
    with pytest.raises(ValidationFailed, match="outside"):
        await adapter.manager.create_control(
            program.id, DERControlBase(opModExpLimW=ActivePower(value=1, multiplier=12)), 0, 60
        )
    with pytest.raises(ValidationFailed, match="outside"):
        await adapter.manager.set_default(
            program.id, DERControlBase(opModGenLimW=ActivePower(value=1, multiplier=-10))
        )
