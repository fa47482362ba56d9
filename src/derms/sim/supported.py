"""Which core controls each simulated DER kind obeys."""

from __future__ import annotations

from derms.core.controls import ControlKind
from derms.core.der import DerKind

_INVERTER = frozenset(
    {
        ControlKind.ACTIVE_POWER_LIMIT,
        ControlKind.FIXED_REACTIVE_POWER,
        ControlKind.FIXED_POWER_FACTOR,
        ControlKind.VOLT_VAR,
        ControlKind.VOLT_WATT,
        ControlKind.CONNECT,
        ControlKind.ENERGIZE,
    }
)
_PV = _INVERTER | {ControlKind.GENERATION_LIMIT}
_STORAGE = _INVERTER | {
    ControlKind.CHARGE_DISCHARGE,
    ControlKind.ACTIVE_POWER_TARGET,
    ControlKind.FIXED_ACTIVE_POWER,
    ControlKind.LOAD_LIMIT,
}
_THERMAL = frozenset(
    {ControlKind.LOAD_SHED, ControlKind.LOAD_UP, ControlKind.LOAD_LIMIT, ControlKind.CONNECT}
)

SUPPORTED_CONTROLS: dict[DerKind, frozenset[ControlKind]] = {
    DerKind.PV_INVERTER: _PV,
    DerKind.UTILITY_PV: _PV,
    DerKind.HOME_BATTERY: _STORAGE,
    DerKind.UTILITY_BATTERY: _STORAGE,
    DerKind.EV_CHARGER: frozenset({ControlKind.CHARGING_LIMIT, ControlKind.LOAD_LIMIT, ControlKind.CONNECT}),
    DerKind.THERMOSTAT: _THERMAL,
    DerKind.WATER_HEATER: _THERMAL,
    DerKind.CI_LOAD: _THERMAL - {ControlKind.LOAD_UP} | {ControlKind.ACTIVE_POWER_TARGET},
}
"""Core control kinds each simulated device kind obeys."""
