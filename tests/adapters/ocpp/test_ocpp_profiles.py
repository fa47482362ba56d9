"""The version-neutral charging profile, its OCPP renderings, the composite schedule and meter values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from ocpp.charge_point import camel_to_snake_case, remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.messages import Call, _validate_payload

from derms.adapters.ocpp.meter import to_telemetry
from derms.adapters.ocpp.profiles import (
    ChargingProfile,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
    SetProfileCommand,
    profile_from_wire,
    to_v16,
    to_v201,
)
from derms.core.telemetry import OperationalStatus
from derms.sim.protocols.ocpp.composite import ProfileStore

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def wire(obj: object) -> dict:  # type: ignore[type-arg]
    return snake_to_camel_case(remove_nones(serialize_as_dict(obj)))  # type: ignore[no-any-return]


def test_profile_validation() -> None:
    with pytest.raises(ValueError, match="first period must start at 0"):
        ChargingProfile(1, 0, ProfilePurpose.TX_DEFAULT, (SchedulePeriod(10, 1.0),))
    with pytest.raises(ValueError, match="increase"):
        ChargingProfile(1, 0, ProfilePurpose.TX_DEFAULT, (SchedulePeriod(0, 1.0), SchedulePeriod(0, 2.0)))
    with pytest.raises(ValueError, match="Recurring"):
        ChargingProfile(
            1, 0, ProfilePurpose.TX_DEFAULT, (SchedulePeriod(0, 1.0),), kind=ProfileKind.RECURRING
        )
    with pytest.raises(ValueError, match="only a TxProfile"):
        ChargingProfile(1, 0, ProfilePurpose.TX_DEFAULT, (SchedulePeriod(0, 1.0),), transaction_id="7")
    with pytest.raises(ValueError, match="numberPhases"):
        SchedulePeriod(0, 1.0, 4)
    station = ChargingProfile(1, 0, ProfilePurpose.STATION_MAX, (SchedulePeriod(0, 1.0),))
    with pytest.raises(ValueError, match="evse/connector 0"):
        SetProfileCommand(1, station)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_renderings_validate_against_the_official_schemas_and_read_back(version: str) -> None:
    profile = ChargingProfile(
        id=42, stack_level=3, purpose=ProfilePurpose.STATION_MAX, unit=RateUnit.A, kind=ProfileKind.RECURRING,
        recurrency="Daily", start=T0, duration_s=86_400, valid_to=T0 + timedelta(days=30), min_rate=6.0,
        periods=(SchedulePeriod(0, 32.0, 3), SchedulePeriod(3600 * 17, 16.5, 1)),
    )  # fmt: skip
    if version == "1.6":
        body = wire(to_v16(profile))
        payload = {"connectorId": 0, "csChargingProfiles": body}
        assert body["chargingProfilePurpose"] == "ChargePointMaxProfile"
    else:
        body = wire(to_v201(profile))
        payload = {"evseId": 0, "chargingProfile": body}
        assert body["chargingProfilePurpose"] == "ChargingStationMaxProfile"
    _validate_payload(Call("1", "SetChargingProfile", payload), version)
    assert profile_from_wire(camel_to_snake_case(body)) == profile


def test_v16_refuses_non_integer_transaction_ids() -> None:
    profile = ChargingProfile(1, 0, ProfilePurpose.TX, (SchedulePeriod(0, 1.0),), transaction_id="abc")
    with pytest.raises(ValueError, match="integers"):
        to_v16(profile)


def test_composite_stacks_and_caps() -> None:
    store = ProfileStore(v_nom=230)
    store.install(0, ChargingProfile(1, 0, ProfilePurpose.STATION_MAX, (SchedulePeriod(0, 16.0, 3),),
                                     unit=RateUnit.A, start=T0))  # fmt: skip
    store.install(1, ChargingProfile(2, 0, ProfilePurpose.TX_DEFAULT, (SchedulePeriod(0, 7000.0),), start=T0))
    store.install(1, ChargingProfile(3, 5, ProfilePurpose.TX_DEFAULT,
                                     (SchedulePeriod(0, 3000.0), SchedulePeriod(600, 20_000.0)),
                                     start=T0, duration_s=1200))  # fmt: skip
    composite = store.composite(1, T0, 3600, RateUnit.W, default_w=22_000)
    assert [(p.start_s, p.limit) for p in composite.periods] == [(0, 3000.0), (600, 11_040.0), (1200, 7000.0)]
    tx = ChargingProfile(4, 1, ProfilePurpose.TX, (SchedulePeriod(0, 1000.0),), kind=ProfileKind.RELATIVE,
                         transaction_id="t1")  # fmt: skip
    store.install(1, tx)
    assert store.limit_at(1, T0 + timedelta(seconds=5), "t1", T0) == 1000.0
    assert store.limit_at(1, T0 + timedelta(seconds=5), None) == 3000.0
    assert store.clear(None, 1, ProfilePurpose.TX_DEFAULT, None) == 2
    assert store.limit_at(1, T0, None) == pytest.approx(11_040.0)


def test_meter_values_v16_and_v201() -> None:
    v16 = [{"timestamp": "2026-06-01T12:00:00Z", "sampled_value": [
        {"value": "3.2", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "40", "measurand": "SoC", "unit": "Percent"},
        {"value": "12345", "unit": "Wh"},
    ]}]  # fmt: skip
    (sample,) = to_telemetry("ev", v16, T0, OperationalStatus.ON)
    assert sample.p_w == pytest.approx(-3200) and sample.soc == pytest.approx(0.4) and sample.ts == T0
    v201 = [{"timestamp": "bad", "sampled_value": [
        {"value": Decimal("1000"), "measurand": "Power.Active.Import", "phase": "L1", "unit_of_measure": {"unit": "W"}},
        {"value": 1100, "measurand": "Power.Active.Import", "phase": "L2", "unit_of_measure": {"unit": "W"}},
        {"value": 230, "measurand": "Voltage", "phase": "L1-N", "unit_of_measure": {"unit": "V"}},
        {"value": 234, "measurand": "Voltage", "phase": "L2-N", "unit_of_measure": {"unit": "V"}},
        {"value": 5, "measurand": "Power.Active.Export", "unit_of_measure": {"unit": "W", "multiplier": 3}},
    ]}]  # fmt: skip
    (sample,) = to_telemetry("ev", v201, T0, OperationalStatus.ON)
    assert sample.p_w == pytest.approx(5000 - 2100) and sample.v_v == pytest.approx(232) and sample.ts == T0


def test_charge_point_passwords_are_held_only_as_scrypt_hashes() -> None:
    from derms.adapters.ocpp.settings import OcppSettings, hash_password, verify_password

    stored = hash_password("s3cret")
    settings = OcppSettings(passwords={"CP1": "s3cret", "CP2": stored})
    assert all(v.startswith("scrypt$") for v in settings.passwords.values())
    assert "s3cret" not in settings.model_dump_json()
    assert verify_password("s3cret", settings.passwords["CP1"]) and verify_password(
        "s3cret", settings.passwords["CP2"]
    )
    assert not verify_password("S3cret", stored) and not verify_password("s3cret", "plain")
