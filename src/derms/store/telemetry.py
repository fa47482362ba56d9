"""Telemetry time series: batched ingest, latest values, range queries, downsampling, retention.

The hot path works on columns (:class:`TelemetryColumns`), never on objects per sample:
SQLite gets one ``executemany`` per batch through the DBAPI, PostgreSQL a binary ``COPY``.
Missing measurements are NaN in memory and NULL in the database (SQLite stores a bound NaN
as NULL; the PostgreSQL path writes NULL explicitly).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Engine, bindparam, delete, select, text

from derms.core.telemetry import DataQuality, OperationalStatus, Telemetry
from derms.store.db import is_postgres
from derms.store.schema import telemetry, telemetry_latest, telemetry_rollup

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


def _columns_from_rows(rows: Sequence[Sequence[object]]) -> TelemetryColumns:
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


class TelemetryStore:
    """Telemetry persistence on an engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pg = is_postgres(engine)
        cols = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
        self._sqlite_insert = f"INSERT INTO telemetry ({cols}) VALUES ({marks})"
        self._upsert = (
            f"INSERT INTO telemetry_latest ({cols}) VALUES ({marks if not self._pg else ', '.join(['%s'] * len(COLUMNS))}) "
            f"ON CONFLICT (der_idx) DO UPDATE SET {updates} WHERE excluded.ts_ms >= telemetry_latest.ts_ms"
        )

    def ingest(self, batch: TelemetryColumns) -> int:
        """Write a batch and update latest values, in one transaction; returns rows written."""
        if len(batch) == 0:
            return 0
        latest = batch.latest_per_der().rows()
        with self.engine.begin() as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            if self._pg:
                self._copy_pg(dbapi, batch)
                with dbapi.cursor() as cur:
                    cur.executemany(self._upsert, latest)
            else:
                cur = dbapi.cursor()
                cur.executemany(self._sqlite_insert, batch.rows())
                cur.executemany(self._upsert, latest)
                cur.close()
        return len(batch)

    @staticmethod
    def _copy_pg(dbapi: object, batch: TelemetryColumns) -> None:
        rows = batch.rows()
        with dbapi.cursor() as cur, cur.copy(f"COPY telemetry ({', '.join(COLUMNS)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for row in rows:
                copy.write_row([None if isinstance(v, float) and v != v else v for v in row])

    def latest(self, der_idx: Sequence[int] | None = None) -> TelemetryColumns:
        """Latest sample per DER (all DERs, or those listed)."""
        query = select(*(telemetry_latest.c[c] for c in COLUMNS)).order_by(telemetry_latest.c.der_idx)
        if der_idx is not None:
            query = query.where(telemetry_latest.c.der_idx.in_(bindparam("ids", expanding=True)))
        with self.engine.connect() as conn:
            params = {"ids": list(der_idx)} if der_idx is not None else {}
            return _columns_from_rows(conn.execute(query, params).all())

    def range(self, der_idx: Sequence[int], start: datetime, end: datetime) -> TelemetryColumns:
        """Samples of the listed DERs with ``start <= ts < end``, ordered by DER then time."""
        query = (
            select(*(telemetry.c[c] for c in COLUMNS))
            .where(telemetry.c.der_idx.in_(bindparam("ids", expanding=True)))
            .where(telemetry.c.ts_ms >= to_ms(start), telemetry.c.ts_ms < to_ms(end))
            .order_by(telemetry.c.der_idx, telemetry.c.ts_ms)
        )
        with self.engine.connect() as conn:
            return _columns_from_rows(conn.execute(query, {"ids": list(der_idx)}).all())

    def downsample(
        self, der_idx: Sequence[int], start: datetime, end: datetime, interval_s: int
    ) -> list[dict[str, float | int | None]]:
        """Per DER and ``interval_s`` bucket: count, mean/min/max of P, mean Q, mean/min/max V, mean SoC.

        Reads raw samples and, for ranges already compacted by :meth:`apply_retention`, the
        stored roll-ups of the same interval.
        """
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        bucket = interval_s * 1000
        raw = text(
            "SELECT der_idx, (ts_ms / :b) * :b AS bucket_ms, COUNT(*) AS n, AVG(p_w) AS p_avg, "
            "MIN(p_w) AS p_min, MAX(p_w) AS p_max, AVG(q_var) AS q_avg, AVG(v_v) AS v_avg, "
            "MIN(v_v) AS v_min, MAX(v_v) AS v_max, AVG(soc) AS soc_avg FROM telemetry "
            "WHERE der_idx IN :ids AND ts_ms >= :s AND ts_ms < :e GROUP BY der_idx, (ts_ms / :b) "
        ).bindparams(bindparam("ids", expanding=True))
        stored = (
            select(telemetry_rollup)
            .where(telemetry_rollup.c.der_idx.in_(bindparam("ids", expanding=True)))
            .where(telemetry_rollup.c.interval_s == interval_s)
            .where(telemetry_rollup.c.bucket_ms >= to_ms(start), telemetry_rollup.c.bucket_ms < to_ms(end))
        )
        params = {"ids": list(der_idx), "b": bucket, "s": to_ms(start), "e": to_ms(end)}
        with self.engine.connect() as conn:
            rows = {(r.der_idx, r.bucket_ms): dict(r._mapping) for r in conn.execute(stored, params)}
            for r in conn.execute(raw, params):
                rows[(r.der_idx, int(r.bucket_ms))] = {
                    **r._mapping,
                    "bucket_ms": int(r.bucket_ms),
                    "interval_s": interval_s,
                }
        return [rows[k] for k in sorted(rows)]

    def apply_retention(
        self, now: datetime, *, raw_days: float, rollup_interval_s: int = 900
    ) -> dict[str, int]:
        """Roll raw samples older than ``raw_days`` into ``rollup_interval_s`` buckets, then delete them.

        The cut-off is aligned down to a bucket boundary so that every stored roll-up covers a
        whole bucket. Returns how many raw rows were compacted and how many roll-ups written.
        """
        bucket = rollup_interval_s * 1000
        cutoff = (to_ms(now) - int(raw_days * 86_400_000)) // bucket * bucket
        rollup = text(
            "INSERT INTO telemetry_rollup (der_idx, interval_s, bucket_ms, n, p_avg, p_min, p_max, q_avg, "
            "v_avg, v_min, v_max, soc_avg) SELECT der_idx, :i, (ts_ms / :b) * :b, COUNT(*), AVG(p_w), "
            "MIN(p_w), MAX(p_w), AVG(q_var), AVG(v_v), MIN(v_v), MAX(v_v), AVG(soc) FROM telemetry "
            "WHERE ts_ms < :c GROUP BY der_idx, (ts_ms / :b) "
            "ON CONFLICT (der_idx, interval_s, bucket_ms) DO NOTHING"
        )
        with self.engine.begin() as conn:
            written = conn.execute(rollup, {"i": rollup_interval_s, "b": bucket, "c": cutoff}).rowcount
            removed = conn.execute(delete(telemetry).where(telemetry.c.ts_ms < cutoff)).rowcount
        return {"raw_removed": int(removed), "rollups_written": int(written), "cutoff_ms": cutoff}

    def prune_rollups(self, now: datetime, *, keep_days: float) -> int:
        cutoff = to_ms(now) - int(keep_days * 86_400_000)
        with self.engine.begin() as conn:
            return int(
                conn.execute(delete(telemetry_rollup).where(telemetry_rollup.c.bucket_ms < cutoff)).rowcount
            )

    def count(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(text("SELECT COUNT(*) FROM telemetry")).scalar_one())
