"""SunSpec measurements to derms telemetry.

Preference order: IEEE 1547 model 701 (DERMeasureAC), else the legacy inverter models
101–103 (single/split/three phase); state of charge from 802 (battery), 713 (DER storage
capacity) or 124 (basic storage, ChaState). SunSpec's W is positive when the device exports,
which is the derms convention; Var positive is injection (over-excited).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from derms.adapters.sunspec.models import ModelBlock
from derms.core.telemetry import OperationalStatus, Telemetry

# model 701 St (DER operating state) and 10x St (inverter operating state, SunSpec enum)
_ST_701 = {0: OperationalStatus.OFF, 1: OperationalStatus.ON, 2: OperationalStatus.ON}
_ST_10X = {
    1: OperationalStatus.OFF, 2: OperationalStatus.STANDBY, 3: OperationalStatus.STANDBY,
    4: OperationalStatus.ON, 5: OperationalStatus.ON, 6: OperationalStatus.STANDBY,
    7: OperationalStatus.FAULT, 8: OperationalStatus.STANDBY,
}  # fmt: skip


def _f(block: ModelBlock | None, path: str) -> float | None:
    if block is None or path not in block.points:
        return None
    value = block.value(path)
    return float(value) if isinstance(value, int | float) else None


def to_telemetry(der_id: str, models: Mapping[int, list[ModelBlock]], ts: datetime) -> Telemetry:
    def first(*ids: int) -> ModelBlock | None:
        for model_id in ids:
            if models.get(model_id):
                return models[model_id][0]
        return None

    m701 = first(701)
    legacy = first(103, 102, 101)
    if m701 is not None:
        p, q, hz = _f(m701, "W"), _f(m701, "Var"), _f(m701, "Hz")
        v = _f(m701, "LNV") or _f(m701, "VL1") or _f(m701, "LLV")
        status = (
            _ST_701.get(int(m701.value("St")), OperationalStatus.UNKNOWN)
            if m701.value("St") is not None
            else OperationalStatus.UNKNOWN
        )
    elif legacy is not None:
        p, q, hz = _f(legacy, "W"), _f(legacy, "VAr"), _f(legacy, "Hz")
        v = _f(legacy, "PhVphA") or _f(legacy, "PPVphAB")
        st = legacy.value("St")
        status = (
            _ST_10X.get(int(st), OperationalStatus.UNKNOWN) if st is not None else OperationalStatus.UNKNOWN
        )
    else:
        p = q = hz = v = None
        status = OperationalStatus.UNKNOWN
    soc_pct = _f(first(802), "SoC") or _f(first(713), "SoC") or _f(first(124), "ChaState")
    soc = None if soc_pct is None else min(1.0, max(0.0, soc_pct / 100.0))
    return Telemetry(der_id=der_id, ts=ts, p_w=p, q_var=q, v_v=v, f_hz=hz, soc=soc, status=status)
