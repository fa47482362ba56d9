"""Kind-specific device state: what an EV session, a thermostat or a water heater reports
beyond power (the planner's energy-limited models need it, see
:mod:`derms.orchestration.flexibility`).

Adapters publish it on ``der.state.<protocol>`` as a columnar batch like telemetry (one list
per field, ``None`` for a value the device did not report). One report carries the whole
kind-specific state of a device at ``ts``: it replaces the previous report, so a value left
out is no longer known (an EV that left has no need and no departure any more).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from derms.core.clock import utc
from derms.core.columns import to_ms

DEVICE_STATE = "der.state"
"""``der.state.<protocol>``: columnar batch, see :func:`encode_device_states`."""

STATE_FIELDS = ("ev_energy_needed_wh", "ev_departure_ms", "temp_c", "temp_out_c", "tank_wh", "tank_max_wh")
"""Value fields of a report (``ev_departure_ms``: departure as ms since the Unix epoch)."""


@dataclass(frozen=True, slots=True)
class DeviceState:
    """One device's kind-specific state at ``ts``; ``None`` where the device does not say.

    * EV charger with a session: ``ev_energy_needed_wh``, energy still to deliver before the
      vehicle leaves at ``ev_departure`` (OCPP 2.0.1 NotifyEVChargingNeeds less the energy
      metered since).
    * Thermostat: indoor temperature ``temp_c`` of its zone and outdoor ``temp_out_c`` [degC].
    * Water heater: ``tank_wh`` of ``tank_max_wh`` stored (CTA-2045-B commodity codes 7,
      Present Energy Storage, and 6, Total Energy Storage) [Wh].
    """

    der_id: str
    ts: datetime
    ev_energy_needed_wh: float | None = None
    ev_departure: datetime | None = None
    temp_c: float | None = None
    temp_out_c: float | None = None
    tank_wh: float | None = None
    tank_max_wh: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", utc(self.ts))
        for name in ("ev_energy_needed_wh", "tank_wh", "tank_max_wh"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be >= 0, not {value}")


def encode_device_states(states: Sequence[DeviceState]) -> dict[str, list[Any]]:
    """Columnar JSON-ready batch of reports."""
    return {
        "der_id": [s.der_id for s in states],
        "ts_ms": [to_ms(s.ts) for s in states],
        "ev_energy_needed_wh": [s.ev_energy_needed_wh for s in states],
        "ev_departure_ms": [None if s.ev_departure is None else to_ms(s.ev_departure) for s in states],
        **{name: [getattr(s, name) for s in states] for name in STATE_FIELDS[2:]},
    }


def encode_state_columns(
    der_ids: Sequence[str], ts_ms: int, columns: Mapping[str, NDArray[np.float64]]
) -> dict[str, list[Any]]:
    """Columnar batch from arrays (NaN for not reported), all reports at ``ts_ms``."""
    n = len(der_ids)
    out: dict[str, list[Any]] = {"der_id": list(der_ids), "ts_ms": [ts_ms] * n}
    for name in STATE_FIELDS:
        col = columns.get(name)
        out[name] = [None] * n if col is None else [None if math.isnan(v) else v for v in col.tolist()]
    return out


@dataclass(frozen=True, slots=True)
class StateColumns:
    """A decoded batch: fleet rows, report times [ms] and one float array per field (NaN: not
    reported)."""

    rows: NDArray[np.int64]
    ts_ms: NDArray[np.float64]
    values: dict[str, NDArray[np.float64]]


def decode_device_states(
    batch: Mapping[str, Any], index: Mapping[str, int]
) -> tuple[StateColumns, list[str]]:
    """Decode a batch against the fleet's ``der_id -> row`` index; returns the columns of the
    known DERs and the unknown ids. Raises ``ValueError`` on a malformed batch."""
    try:
        ids = [str(i) for i in batch["der_id"]]
        n = len(ids)
        if any(len(batch[k]) != n for k in ("ts_ms", *STATE_FIELDS)):
            raise ValueError("device state columns differ in length")
        known = [i for i, der_id in enumerate(ids) if der_id in index]
        ts = np.array(batch["ts_ms"], np.float64)
        values = {name: np.array(batch[name], dtype=np.float64) for name in STATE_FIELDS}  # None -> nan
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed device state batch: {exc}") from exc
    if not np.isfinite(ts).all():
        raise ValueError("device state without a time")
    rows = np.array([index[ids[i]] for i in known], np.int64)
    return (
        StateColumns(rows, ts[known], {k: v[known] for k, v in values.items()}),
        [ids[i] for i in range(n) if ids[i] not in index],
    )
