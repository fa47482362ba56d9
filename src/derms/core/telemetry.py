"""Telemetry samples from DERs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum

from derms.core.clock import utc


class OperationalStatus(IntEnum):
    """Operational state, after IEEE 2030.5 DERStatus operationalModeStatus and SunSpec St."""

    UNKNOWN = 0
    OFF = 1
    STANDBY = 2
    ON = 3
    FAULT = 4
    TEST = 5


class DataQuality(IntEnum):
    """Quality of a sample (IEC 61850 style validity, reduced)."""

    GOOD = 0
    ESTIMATED = 1
    QUESTIONABLE = 2
    INVALID = 3


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One sample of a DER's state. Any measurement the device did not report is ``None``.

    ``p_w``/``q_var`` follow the derms sign convention (positive = injection). ``soc`` is a
    fraction of usable energy in [0, 1]. ``available`` says whether the device accepts dispatch.
    """

    der_id: str
    ts: datetime
    p_w: float | None = None
    q_var: float | None = None
    v_v: float | None = None
    f_hz: float | None = None
    soc: float | None = None
    status: OperationalStatus = OperationalStatus.UNKNOWN
    available: bool = True
    quality: DataQuality = DataQuality.GOOD

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", utc(self.ts))
        if self.soc is not None and not 0.0 <= self.soc <= 1.0:
            raise ValueError(f"soc {self.soc} outside [0, 1]")
        if self.v_v is not None and self.v_v < 0:
            raise ValueError("voltage cannot be negative")
        if self.f_hz is not None and self.f_hz < 0:
            raise ValueError("frequency cannot be negative")
