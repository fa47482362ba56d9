"""Bus subjects and payload codecs for platform events (pure; no I/O).

Telemetry travels as a columnar batch: one list per field, one row per sample, times as
milliseconds since the Unix epoch, so that an adapter can hand 10,000 samples to the bus as
one message (see :func:`derms.core.columns.columns_from_batch` for the vectorised decoder).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from derms.core.columns import from_ms, to_ms
from derms.core.dispatch import CommandState
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
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
"""``objective.created``: :func:`encode_objective`; ``objective.cancelled``: ``{id, source}``."""
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


def encode_objective(objective: Objective) -> dict[str, Any]:
    """JSON-ready form for ``objective.created`` (times ISO 8601, duration in seconds)."""
    return {
        "id": objective.id,
        "kind": str(objective.kind),
        "start": objective.start.isoformat(),
        "duration_s": objective.duration.total_seconds(),
        "area": {"level": str(objective.area.level), "ids": list(objective.area.ids)},
        "priority": objective.priority,
        "target_w": objective.target_w,
        "v_min_pu": objective.v_min_pu,
        "v_max_pu": objective.v_max_pu,
        "prices": list(objective.prices),
        "source": objective.source,
        "tenant_id": objective.tenant_id,
    }


def decode_objective(data: dict[str, Any]) -> Objective:
    """Inverse of :func:`encode_objective`; raises ``ValueError`` on a malformed payload."""
    try:
        area = data.get("area") or {}
        return Objective(
            id=str(data["id"]),
            kind=ObjectiveKind(data["kind"]),
            start=datetime.fromisoformat(data["start"]),
            duration=timedelta(seconds=float(data["duration_s"])),
            area=Area(AreaLevel(area.get("level", AreaLevel.SYSTEM)), tuple(area.get("ids", ()))),
            priority=int(data.get("priority", 100)),
            target_w=_opt_float(data.get("target_w")),
            v_min_pu=float(data.get("v_min_pu", 0.95)),
            v_max_pu=float(data.get("v_max_pu", 1.05)),
            prices=tuple(float(p) for p in data.get("prices", ())),
            source=str(data.get("source", "operator")),
            tenant_id=data.get("tenant_id"),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed objective: {exc}") from exc
