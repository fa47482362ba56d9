"""Protocol-independent device limit checks, applied before any translation."""

from __future__ import annotations

from derms.core.controls import (
    ActivePowerTarget,
    ChargeDischarge,
    ChargingLimit,
    Control,
    FixedReactivePower,
    GenerationLimit,
    LoadLimit,
)
from derms.core.der import Der
from derms.core.errors import LimitViolation

_TOLERANCE = 1e-9


def check_limits(der: Der, control: Control) -> None:
    """Raise :class:`LimitViolation` if ``control`` would take ``der`` outside its ratings.

    Checks: the control is among the device's supported functions (when it declares any);
    active power within ``[-w_max_consume, w_max]``; storage set points within ratings;
    reactive power within the var ratings; charging limits within the charger's rating.
    """
    caps = der.capabilities
    if caps.controls and control.kind not in caps.controls:
        raise LimitViolation(der.id, f"{der.kind} does not support {control.kind}")
    match control:
        case ActivePowerTarget(w=w) | ChargeDischarge(w=w):
            if w > caps.w_max + _TOLERANCE:
                raise LimitViolation(der.id, f"{w:.1f} W exceeds w_max {caps.w_max:.1f} W")
            if -w > caps.w_max_consume + _TOLERANCE:
                raise LimitViolation(
                    der.id, f"{-w:.1f} W consumption exceeds w_max_consume {caps.w_max_consume:.1f} W"
                )
        case FixedReactivePower(var=var):
            if var > caps.var_max_inject + _TOLERANCE:
                raise LimitViolation(
                    der.id, f"{var:.1f} var exceeds var_max_inject {caps.var_max_inject:.1f}"
                )
            if -var > caps.var_max_absorb + _TOLERANCE:
                raise LimitViolation(
                    der.id, f"{-var:.1f} var exceeds var_max_absorb {caps.var_max_absorb:.1f}"
                )
        case GenerationLimit(w=w) if w > caps.w_max + _TOLERANCE:
            raise LimitViolation(der.id, f"generation limit {w:.1f} W exceeds w_max {caps.w_max:.1f} W")
        case LoadLimit(w=w) if w > caps.w_max_consume + _TOLERANCE:
            raise LimitViolation(
                der.id, f"load limit {w:.1f} W exceeds w_max_consume {caps.w_max_consume:.1f} W"
            )
        case ChargingLimit(limit=limit, unit="W") if limit > caps.w_max_consume + _TOLERANCE:
            raise LimitViolation(
                der.id, f"charging limit {limit:.1f} W exceeds charger rating {caps.w_max_consume:.1f} W"
            )
        case _:
            pass
