"""JSON encoding of repository records for durable storage (pure, lossless round trip)."""

from __future__ import annotations

import dataclasses
from typing import Any

from envoy_schema.server.schema.sep2.der import DERAvailability, DERSettings, DERStatus
from pydantic import BaseModel

from derms.adapters.ieee2030_5.records import (
    ControlRecord,
    CurvePoint,
    CurveRecord,
    DefaultControlRecord,
    EndDeviceRecord,
    LogEventRecord,
    MirrorUsagePointRecord,
    ProgramRecord,
    ReadingRecord,
    ResponseRecord,
    SubscriptionRecord,
)
from derms.adapters.ieee2030_5.schema import DERCapability, DERControlBase

Record = (
    EndDeviceRecord
    | ProgramRecord
    | ControlRecord
    | CurveRecord
    | MirrorUsagePointRecord
    | ResponseRecord
    | LogEventRecord
    | SubscriptionRecord
)
KINDS: dict[type, str] = {
    EndDeviceRecord: "end_device",
    ProgramRecord: "program",
    ControlRecord: "control",
    CurveRecord: "curve",
    MirrorUsagePointRecord: "mup",
    ResponseRecord: "response",
    LogEventRecord: "log_event",
    SubscriptionRecord: "subscription",
}
_MODELS: dict[str, type[BaseModel]] = {
    "capability": DERCapability,
    "settings": DERSettings,
    "status": DERStatus,
    "availability": DERAvailability,
    "base": DERControlBase,
}


def _value(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, frozenset):
        return sorted(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode(value)  # type: ignore[arg-type]
    if isinstance(value, tuple | list):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    return value


def encode(record: object) -> dict[str, Any]:
    """A record (or nested record) as a JSON-ready dict."""
    return {f.name: _value(getattr(record, f.name)) for f in dataclasses.fields(record)}  # type: ignore[arg-type]


def _models(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (_MODELS[k].model_validate(v) if k in _MODELS and v is not None else v) for k, v in data.items()
    }


def decode(kind: str, data: dict[str, Any]) -> Record:
    """Inverse of :func:`encode` for a top-level record of ``kind``."""
    match kind:
        case "end_device":
            return EndDeviceRecord(**_models(data))
        case "program":
            default = data.get("default")
            edevs = data.get("edev_ids")
            return ProgramRecord(
                **{
                    **data,
                    "edev_ids": None if edevs is None else frozenset(edevs),
                    "default": None if default is None else DefaultControlRecord(**_models(default)),
                }
            )
        case "control":
            return ControlRecord(**_models(data))
        case "curve":
            return CurveRecord(**{**data, "points": tuple(CurvePoint(**p) for p in data["points"])})
        case "mup":
            readings = {k: ReadingRecord(**v) for k, v in data["readings"].items()}
            return MirrorUsagePointRecord(**{**data, "readings": readings})
        case "response":
            return ResponseRecord(**data)
        case "log_event":
            return LogEventRecord(**data)
        case "subscription":
            return SubscriptionRecord(**data)
    raise ValueError(f"unknown 2030.5 record kind {kind!r}")
