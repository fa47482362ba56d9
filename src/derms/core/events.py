"""Bus subjects and payload codecs for platform events (pure; no I/O).

Telemetry travels as a columnar batch: one list per field, one row per sample, times as
milliseconds since the Unix epoch, so that an adapter can hand 10,000 samples to the bus as
one message (see :func:`derms.core.columns.columns_from_batch` for the vectorised decoder).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from derms.core.columns import from_ms, to_ms
from derms.core.dispatch import CommandState
from derms.core.telemetry import DataQuality, OperationalStatus, Telemetry

TELEMETRY = "telemetry"
"""``telemetry.<protocol>``: columnar batch, see :func:`encode_telemetry`."""
DER_STATUS = "der.status"
"""``der.status.<protocol>``: ``{der_id, online, detail, ts}`` when a device comes or goes."""
COMMAND_STATE = "command.state"
"""``command.state``: ``{command_id, der_id, state, detail, ts}`` on every command transition."""
REGISTRY = "registry"
"""``registry.<entity>``: ``{action, id, tenant_id}`` after a registry change."""
OBJECTIVE = "objective"
"""``objective.<created|cancelled>``: the objective as a dict."""
TOPOLOGY = "grid.topology"
"""``grid.topology``: ``{switch_id, closed}`` or an outage change."""

_FLOAT_FIELDS = ("p_w", "q_var", "v_v", "f_hz", "soc")


def telemetry_subject(protocol: str) -> str:
    return f"{TELEMETRY}.{protocol}"


def encode_telemetry(samples: Sequence[Telemetry]) -> dict[str, list[Any]]:
    """Columnar JSON-ready batch; missing measurements are ``None``."""
    return {
        "der_id": [s.der_id for s in samples],
        "ts_ms": [to_ms(s.ts) for s in samples],
        **{name: [getattr(s, name) for s in samples] for name in _FLOAT_FIELDS},
        "status": [int(s.status) for s in samples],
        "available": [s.available for s in samples],
        "quality": [int(s.quality) for s in samples],
    }


def decode_telemetry(batch: dict[str, list[Any]]) -> list[Telemetry]:
    """Inverse of :func:`encode_telemetry`; raises ``ValueError`` on a malformed batch."""
    try:
        n = len(batch["der_id"])
        if any(len(batch[k]) != n for k in ("ts_ms", *_FLOAT_FIELDS, "status", "available", "quality")):
            raise ValueError("telemetry batch columns differ in length")
        return [
            Telemetry(
                der_id=str(batch["der_id"][i]),
                ts=from_ms(int(batch["ts_ms"][i])),
                **{k: _opt_float(batch[k][i]) for k in _FLOAT_FIELDS},
                status=OperationalStatus(batch["status"][i]),
                available=bool(batch["available"][i]),
                quality=DataQuality(batch["quality"][i]),
            )
            for i in range(n)
        ]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed telemetry batch: {exc}") from exc


def _opt_float(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return None if math.isnan(f) else f


def encode_command_state(
    command_id: str, der_id: str, state: CommandState, ts: datetime, detail: str = ""
) -> dict[str, str]:
    return {
        "command_id": command_id,
        "der_id": der_id,
        "state": str(state),
        "detail": detail,
        "ts": ts.isoformat(),
    }
