"""OCPP 1.6J and 2.0.1 central system (CSMS) on the ``ocpp`` library and ``websockets``."""

from derms.adapters.ocpp.adapter import OcppAdapter, create_adapter
from derms.adapters.ocpp.profiles import (
    ChargingProfile,
    ClearProfileCommand,
    CompositeSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
    SetProfileCommand,
)
from derms.adapters.ocpp.settings import OcppSettings

__all__ = [
    "ChargingProfile",
    "ClearProfileCommand",
    "CompositeSchedule",
    "OcppAdapter",
    "OcppSettings",
    "ProfileKind",
    "ProfilePurpose",
    "RateUnit",
    "SchedulePeriod",
    "SetProfileCommand",
    "create_adapter",
]
