"""OpenADR 2.0b enumerations, kept verbatim from the specification.

References: OpenADR 2.0b Profile Specification (OpenADR Alliance, 2015), section 8 (EiEvent:
signal names and types, Table 1 and conformance rule 14), section 9 (EiReport: report names,
types and reading types), section 10 (EiOpt) and section 11 (status codes).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class SignalName(StrEnum):
    SIMPLE = "SIMPLE"
    ELECTRICITY_PRICE = "ELECTRICITY_PRICE"
    ENERGY_PRICE = "ENERGY_PRICE"
    DEMAND_CHARGE = "DEMAND_CHARGE"
    BID_PRICE = "BID_PRICE"
    BID_LOAD = "BID_LOAD"
    BID_ENERGY = "BID_ENERGY"
    CHARGE_STATE = "CHARGE_STATE"
    LOAD_DISPATCH = "LOAD_DISPATCH"
    LOAD_CONTROL = "LOAD_CONTROL"


class SignalType(StrEnum):
    DELTA = "delta"
    LEVEL = "level"
    MULTIPLIER = "multiplier"
    PRICE = "price"
    PRICE_MULTIPLIER = "priceMultiplier"
    PRICE_RELATIVE = "priceRelative"
    SETPOINT = "setpoint"
    X_LOAD_CONTROL_CAPACITY = "x-loadControlCapacity"
    X_LOAD_CONTROL_LEVEL_OFFSET = "x-loadControlLevelOffset"
    X_LOAD_CONTROL_PERCENT_OFFSET = "x-loadControlPercentOffset"
    X_LOAD_CONTROL_SETPOINT = "x-loadControlSetpoint"


_PRICES = frozenset({SignalType.PRICE, SignalType.PRICE_RELATIVE, SignalType.PRICE_MULTIPLIER})

VALID_SIGNAL_TYPES: dict[SignalName, frozenset[SignalType]] = {
    SignalName.SIMPLE: frozenset({SignalType.LEVEL}),
    SignalName.ELECTRICITY_PRICE: _PRICES,
    SignalName.ENERGY_PRICE: _PRICES,
    SignalName.DEMAND_CHARGE: _PRICES,
    SignalName.BID_PRICE: frozenset({SignalType.PRICE}),
    SignalName.BID_LOAD: frozenset({SignalType.SETPOINT}),
    SignalName.BID_ENERGY: frozenset({SignalType.SETPOINT}),
    SignalName.CHARGE_STATE: frozenset({SignalType.SETPOINT, SignalType.DELTA, SignalType.LEVEL}),
    SignalName.LOAD_DISPATCH: frozenset(
        {SignalType.SETPOINT, SignalType.DELTA, SignalType.MULTIPLIER, SignalType.LEVEL}
    ),
    SignalName.LOAD_CONTROL: frozenset(
        {
            SignalType.X_LOAD_CONTROL_CAPACITY,
            SignalType.X_LOAD_CONTROL_LEVEL_OFFSET,
            SignalType.X_LOAD_CONTROL_PERCENT_OFFSET,
            SignalType.X_LOAD_CONTROL_SETPOINT,
        }
    ),
}
"""Signal name → allowed signal types (2.0b Table 1, conformance rule 14)."""


class EventStatus(StrEnum):
    NONE = "none"
    FAR = "far"
    NEAR = "near"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ResponseRequired(StrEnum):
    ALWAYS = "always"
    NEVER = "never"


class OptType(StrEnum):
    OPT_IN = "optIn"
    OPT_OUT = "optOut"


class OptReason(StrEnum):
    ECONOMIC = "economic"
    EMERGENCY = "emergency"
    MUST_RUN = "mustRun"
    NOT_PARTICIPATING = "notParticipating"
    OUTAGE_RUN_STATUS = "outageRunStatus"
    OVERRIDE_STATUS = "overrideStatus"
    PARTICIPATING = "participating"
    X_SCHEDULE = "x-schedule"


class ReportName(StrEnum):
    METADATA_HISTORY_USAGE = "METADATA_HISTORY_USAGE"
    HISTORY_USAGE = "HISTORY_USAGE"
    METADATA_HISTORY_GREENBUTTON = "METADATA_HISTORY_GREENBUTTON"
    HISTORY_GREENBUTTON = "HISTORY_GREENBUTTON"
    METADATA_TELEMETRY_USAGE = "METADATA_TELEMETRY_USAGE"
    TELEMETRY_USAGE = "TELEMETRY_USAGE"
    METADATA_TELEMETRY_STATUS = "METADATA_TELEMETRY_STATUS"
    TELEMETRY_STATUS = "TELEMETRY_STATUS"


class ReportType(StrEnum):
    READING = "reading"
    USAGE = "usage"
    DEMAND = "demand"
    SET_POINT = "setPoint"
    DELTA_USAGE = "deltaUsage"
    DELTA_SET_POINT = "deltaSetPoint"
    DELTA_DEMAND = "deltaDemand"
    BASELINE = "baseline"
    DEVIATION = "deviation"
    AVG_USAGE = "avgUsage"
    AVG_DEMAND = "avgDemand"
    OPERATING_STATE = "operatingState"
    UP_REGULATION_CAPACITY_AVAILABLE = "upRegulationCapacityAvailable"
    DOWN_REGULATION_CAPACITY_AVAILABLE = "downRegulationCapacityAvailable"
    REGULATION_SETPOINT = "regulationSetpoint"
    STORED_ENERGY = "storedEnergy"
    TARGET_ENERGY_STORAGE = "targetEnergyStorage"
    AVAILABLE_ENERGY_STORAGE = "availableEnergyStorage"
    PRICE = "price"
    LEVEL = "level"
    POWER_FACTOR = "powerFactor"
    PERCENT_USAGE = "percentUsage"
    PERCENT_DEMAND = "percentDemand"
    X_RESOURCE_STATUS = "x-resourceStatus"


class ReadingType(StrEnum):
    DIRECT_READ = "Direct Read"
    NET = "Net"
    ALLOCATED = "Allocated"
    ESTIMATED = "Estimated"
    SUMMED = "Summed"
    DERIVED = "Derived"
    MEAN = "Mean"
    PEAK = "Peak"
    HYBRID = "Hybrid"
    CONTRACT = "Contract"
    PROJECTED = "Projected"
    X_RMS = "x-RMS"
    X_NOT_APPLICABLE = "x-notApplicable"


class Status(IntEnum):
    """eiResponse codes (2.0b section 11): HTTP-like 2xx/4xx plus the OpenADR 45x/46x range."""

    OK = 200
    BAD_REQUEST = 400
    OUT_OF_SEQUENCE = 450
    NOT_ALLOWED = 451
    INVALID_ID = 452
    NOT_RECOGNIZED = 453
    INVALID_DATA = 454
    COMPLIANCE_ERROR = 459
    SIGNAL_NOT_SUPPORTED = 460
    REPORT_NOT_SUPPORTED = 461
    TARGET_MISMATCH = 462
    NOT_REGISTERED_OR_AUTHORIZED = 463
    DEPLOYMENT_ERROR_OTHER = 469


SI_SCALE_CODES = ("p", "n", "micro", "m", "c", "d", "k", "M", "G", "T", "none")
SI_SCALE: dict[str, float] = {
    "p": 1e-12,
    "n": 1e-9,
    "micro": 1e-6,
    "m": 1e-3,
    "c": 1e-2,
    "d": 1e-1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "none": 1.0,
}
"""``scale:siScaleCode`` multipliers (EMIX siscale schema)."""

SERVICES = ("EiRegisterParty", "EiEvent", "EiOpt", "EiReport", "OadrPoll")
"""Simple HTTP service endpoints: ``<prefix>/OpenADR2/Simple/2.0b/<service>`` (2.0b section 13)."""
