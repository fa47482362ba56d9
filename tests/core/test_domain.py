from datetime import UTC, datetime, timedelta, timezone

import pytest

from derms.core import (
    ActivePowerLimit,
    Area,
    AreaLevel,
    Capabilities,
    ChargingLimit,
    CurvePoint,
    FixedPowerFactor,
    ImportExportLimit,
    LoadShed,
    ManualClock,
    Objective,
    ObjectiveKind,
    ScaledClock,
    Setpoint,
    Site,
    Telemetry,
    VoltVarCurve,
    utc,
)
from derms.core.controls import CONTROL_TYPES, ControlKind, control_from_dict, control_to_dict
from derms.core.dispatch import ALLOWED_TRANSITIONS, CommandState
from derms.core.events import decode_telemetry, encode_telemetry

T0 = datetime(2026, 7, 15, 12, tzinfo=UTC)
VV = VoltVarCurve((CurvePoint(0.92, 0.44), CurvePoint(0.98, 0), CurvePoint(1.02, 0), CurvePoint(1.08, -0.44)))


@pytest.mark.parametrize(
    "control",
    [
        ActivePowerLimit(50.0),
        FixedPowerFactor(0.95, absorbing=True),
        VV,
        ImportExportLimit(export_w=5000),
        LoadShed(3),
        ChargingLimit(16, "A", 3),
    ],
)
def test_control_roundtrip(control) -> None:
    assert control_from_dict(control_to_dict(control)) == control


def test_every_control_kind_has_a_type() -> None:
    assert set(CONTROL_TYPES) == set(ControlKind)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ActivePowerLimit(120), "outside"),
        (lambda: ActivePowerLimit(float("nan")), "NaN"),
        (lambda: FixedPowerFactor(0.0), "outside"),
        (lambda: VoltVarCurve((CurvePoint(1.0, 0),)), "2 to 10 points"),
        (lambda: VoltVarCurve((CurvePoint(1.1, 0), CurvePoint(1.0, 0))), "non-decreasing"),
        (lambda: ImportExportLimit(), "needs import_w or export_w"),
        (lambda: ImportExportLimit(import_w=-1), "magnitude"),
        (lambda: ChargingLimit(10, "kW"), "unit"),
        (lambda: LoadShed(4), "outside"),
    ],
)
def test_controls_refuse_out_of_range(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_control_from_dict_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="unknown"):
        control_from_dict({"kind": "self_destruct"})
    with pytest.raises(ValueError, match="bad fields"):
        control_from_dict({"kind": "load_shed", "intensity": 2})


def test_times_are_utc_aware() -> None:
    with pytest.raises(ValueError, match="naive"):
        utc(datetime(2026, 1, 1))
    cet = timezone(timedelta(hours=1))
    assert utc(datetime(2026, 1, 1, 13, tzinfo=cet)) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    sample = Telemetry("d", datetime(2026, 1, 1, 13, tzinfo=cet), p_w=1.0)
    assert sample.ts.tzinfo is UTC
    with pytest.raises(ValueError):
        Setpoint("d", LoadShed(1), T0, T0)


def test_validation_of_domain_objects() -> None:
    with pytest.raises(ValueError, match="w_max must be >= 0"):
        Capabilities(w_max=-1)
    with pytest.raises(ValueError, match="latitude"):
        Site("s", "c", "t", latitude=91)
    with pytest.raises(ValueError, match="soc"):
        Telemetry("d", T0, soc=1.5)
    with pytest.raises(ValueError, match="needs target_w"):
        Objective("o", ObjectiveKind.PEAK_REDUCTION, T0, timedelta(hours=1))
    with pytest.raises(ValueError, match="needs ids"):
        Area(AreaLevel.FEEDER)
    objective = Objective("o", ObjectiveKind.CAPACITY_TARGET, T0, timedelta(hours=1), target_w=1e6)
    assert objective.active_at(T0 + timedelta(minutes=59)) and not objective.active_at(objective.end)


def test_command_state_machine() -> None:
    assert all(not s.is_final for s in ALLOWED_TRANSITIONS)
    assert CommandState.ACKNOWLEDGED in ALLOWED_TRANSITIONS[CommandState.SENT]
    assert CommandState.PENDING not in ALLOWED_TRANSITIONS[CommandState.ACTIVE]


async def test_clocks() -> None:
    manual = ManualClock(T0)
    await manual.sleep(3600)
    assert manual.now() == T0 + timedelta(hours=1)
    with pytest.raises(ValueError):
        manual.set(T0)
    scaled = ScaledClock(T0, speed=3600)
    await scaled.sleep(1800)  # half an hour of clock time, half a wall second
    assert scaled.now() - T0 >= timedelta(minutes=30)


def test_telemetry_codec_roundtrip() -> None:
    samples = [
        Telemetry("a", T0, p_w=1.5, soc=0.4),
        Telemetry("b", T0 + timedelta(seconds=1), q_var=-2.0, available=False),
    ]
    assert decode_telemetry(encode_telemetry(samples)) == samples
    with pytest.raises(ValueError, match="malformed"):
        decode_telemetry({"der_id": ["a"]})
