"""Columnar telemetry: one numpy array per field, one entry per sample.

Shared by the bus codec, the fleet state and the telemetry store, so that 10,000 samples
move as a handful of arrays. NaN marks a missing measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from derms.core.telemetry import DataQuality, OperationalStatus, Telemetry

VALUE_FIELDS = ("p_w", "q_var", "v_v", "f_hz", "soc")
COLUMNS = ("der_idx", "ts_ms", *VALUE_FIELDS, "status", "available", "quality")


def to_ms(ts: datetime) -> int:
    return round(ts.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(slots=True)
class TelemetryColumns:
    """A batch of samples as columns; one entry per sample. NaN marks a missing value."""

    der_idx: NDArray[np.int32]
    ts_ms: NDArray[np.int64]
    p_w: NDArray[np.float64]
    q_var: NDArray[np.float64]
    v_v: NDArray[np.float64]
    f_hz: NDArray[np.float64]
    soc: NDArray[np.float64]
    status: NDArray[np.int8]
    available: NDArray[np.bool_]
    quality: NDArray[np.int8]

    def __post_init__(self) -> None:
        n = len(self.der_idx)
        if any(len(getattr(self, c)) != n for c in COLUMNS):
            raise ValueError("telemetry columns differ in length")

    def __len__(self) -> int:
        return len(self.der_idx)

    @classmethod
    def empty(cls) -> TelemetryColumns:
        return cls.from_arrays(np.empty(0, np.int32), np.empty(0, np.int64))

    @classmethod
    def from_arrays(
        cls, der_idx: NDArray[np.int32], ts_ms: NDArray[np.int64], **values: NDArray
    ) -> TelemetryColumns:
        n = len(der_idx)
        nan = np.full(n, np.nan)
        return cls(
            der_idx=np.asarray(der_idx, np.int32),
            ts_ms=np.asarray(ts_ms, np.int64),
            **{f: np.asarray(values.get(f, nan), np.float64) for f in VALUE_FIELDS},
            status=np.asarray(values.get("status", np.full(n, int(OperationalStatus.UNKNOWN))), np.int8),
            available=np.asarray(values.get("available", np.ones(n, bool)), np.bool_),
            quality=np.asarray(values.get("quality", np.zeros(n)), np.int8),
        )

    @classmethod
    def from_samples(cls, samples: Sequence[Telemetry], index: dict[str, int]) -> TelemetryColumns:
        """Columns from core samples; raises ``KeyError`` naming an unknown DER."""
        unknown = [s.der_id for s in samples if s.der_id not in index]
        if unknown:
            raise KeyError(f"unknown DERs: {sorted(set(unknown))[:10]}")

        def col(name: str) -> NDArray[np.float64]:
            return np.array([np.nan if (v := getattr(s, name)) is None else v for s in samples], np.float64)

        return cls(
            der_idx=np.array([index[s.der_id] for s in samples], np.int32),
            ts_ms=np.array([to_ms(s.ts) for s in samples], np.int64),
            **{f: col(f) for f in VALUE_FIELDS},
            status=np.array([int(s.status) for s in samples], np.int8),
            available=np.array([s.available for s in samples], np.bool_),
            quality=np.array([int(s.quality) for s in samples], np.int8),
        )

    def take(self, mask_or_index: NDArray) -> TelemetryColumns:
        return TelemetryColumns(**{c: getattr(self, c)[mask_or_index] for c in COLUMNS})

    def latest_per_der(self) -> TelemetryColumns:
        """The newest sample of each DER in the batch."""
        if len(self) == 0:
            return self
        order = np.lexsort((self.ts_ms, self.der_idx))
        sorted_idx = self.der_idx[order]
        last = np.r_[sorted_idx[1:] != sorted_idx[:-1], True]
        return self.take(order[last])

    def rows(self) -> list[tuple]:
        return list(
            zip(
                self.der_idx.tolist(),
                self.ts_ms.tolist(),
                *(getattr(self, f).tolist() for f in VALUE_FIELDS),
                self.status.tolist(),
                self.available.tolist(),
                self.quality.tolist(),
                strict=True,
            )
        )

    def to_samples(self, der_ids: Sequence[str]) -> list[Telemetry]:
        """Core samples; ``der_ids[i]`` is the id of dense index ``i``."""
        out = []
        for i in range(len(self)):
            values = {f: (None if np.isnan(v := getattr(self, f)[i]) else float(v)) for f in VALUE_FIELDS}
            out.append(
                Telemetry(
                    der_id=der_ids[int(self.der_idx[i])],
                    ts=from_ms(int(self.ts_ms[i])),
                    **values,
                    status=OperationalStatus(int(self.status[i])),
                    available=bool(self.available[i]),
                    quality=DataQuality(int(self.quality[i])),
                )
            )
        return out


def columns_from_rows(rows: Sequence[Sequence[object]]) -> TelemetryColumns:
    if not rows:
        return TelemetryColumns.empty()
    arr = np.array(rows, dtype=object)
    floats = {f: arr[:, 2 + i].astype(np.float64) for i, f in enumerate(VALUE_FIELDS)}  # None -> nan
    return TelemetryColumns(
        der_idx=arr[:, 0].astype(np.int32),
        ts_ms=arr[:, 1].astype(np.int64),
        **floats,
        status=arr[:, 7].astype(np.int8),
        available=arr[:, 8].astype(np.bool_),
        quality=arr[:, 9].astype(np.int8),
    )


def columns_from_batch(batch: dict[str, list], index: dict[str, int]) -> tuple[TelemetryColumns, list[str]]:
    """Decode a bus telemetry batch (:func:`derms.core.events.encode_telemetry`) into columns.

    Samples of DERs missing from ``index`` are dropped and their ids returned, so the caller
    can log them; raises ``ValueError`` on a malformed batch.
    """
    try:
        ids = batch["der_id"]
        rows = np.array([index.get(d, -1) for d in ids], np.int64)
        known = rows >= 0
        n = len(ids)
        arrays = {
            "ts_ms": np.asarray(batch["ts_ms"], np.int64),
            **{f: np.asarray(batch[f], dtype=np.float64) for f in VALUE_FIELDS},
            "status": np.asarray(batch["status"], np.int8),
            "available": np.asarray(batch["available"], np.bool_),
            "quality": np.asarray(batch["quality"], np.int8),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed telemetry batch: {exc}") from exc
    if any(len(a) != n for a in arrays.values()):
        raise ValueError("malformed telemetry batch: columns differ in length")
    cols = TelemetryColumns(der_idx=rows.astype(np.int32), **arrays)
    unknown = [ids[i] for i in np.flatnonzero(~known)]
    return (cols if known.all() else cols.take(known)), unknown
