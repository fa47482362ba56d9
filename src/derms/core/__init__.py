"""Domain types, pure and I/O-free.

Sign convention used everywhere in derms: active power ``p_w`` is positive when a DER
*injects* into the grid (generation, battery discharge) and negative when it *consumes*
(load, battery charge, EV charging). Reactive power ``q_var`` is positive when injected
(capacitive, "over-excited"). Units are SI (W, var, VA, Wh, V, Hz, s) and every time is a
UTC-aware :class:`datetime.datetime`.
"""

from derms.core.clock import Clock, ManualClock, ScaledClock, SystemClock, utc
from derms.core.controls import (
    ActivePowerLimit,
    ActivePowerTarget,
    ChargeDischarge,
    ChargingLimit,
    Connect,
    Control,
    ControlKind,
    CurvePoint,
    Energize,
    FixedActivePower,
    FixedPowerFactor,
    FixedReactivePower,
    FreqWattCurve,
    GenerationLimit,
    ImportExportLimit,
    LoadLimit,
    LoadShed,
    LoadUp,
    PriceSignal,
    VoltVarCurve,
    VoltWattCurve,
    WattPowerFactorCurve,
)
from derms.core.der import Capabilities, Der, DerKind
from derms.core.dispatch import CommandState, DispatchPlan, Reason, Setpoint
from derms.core.errors import DermsError, LimitViolation, NotFound, ValidationFailed
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.core.site import Customer, Phase, Site
from derms.core.telemetry import DataQuality, OperationalStatus, Telemetry

__all__ = [
    "ActivePowerLimit",
    "ActivePowerTarget",
    "Area",
    "AreaLevel",
    "Capabilities",
    "ChargeDischarge",
    "ChargingLimit",
    "Clock",
    "CommandState",
    "Connect",
    "Control",
    "ControlKind",
    "CurvePoint",
    "Customer",
    "DataQuality",
    "Der",
    "DerKind",
    "DermsError",
    "DispatchPlan",
    "Energize",
    "FixedActivePower",
    "FixedPowerFactor",
    "FixedReactivePower",
    "FreqWattCurve",
    "GenerationLimit",
    "ImportExportLimit",
    "LimitViolation",
    "LoadLimit",
    "LoadShed",
    "LoadUp",
    "ManualClock",
    "NotFound",
    "Objective",
    "ObjectiveKind",
    "OperationalStatus",
    "Phase",
    "PriceSignal",
    "Reason",
    "ScaledClock",
    "Setpoint",
    "Site",
    "SystemClock",
    "Telemetry",
    "ValidationFailed",
    "VoltVarCurve",
    "VoltWattCurve",
    "WattPowerFactorCurve",
    "utc",
]
