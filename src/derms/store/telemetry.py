"""Telemetry time series: batched ingest, latest values, range queries, downsampling, retention.

The hot path works on columns (:class:`TelemetryColumns`), never on objects per sample:
SQLite gets one ``executemany`` per batch through the DBAPI, PostgreSQL a ``COPY``.
Missing measurements are NaN in memory and NULL in the database (SQLite stores a bound NaN
as NULL; the PostgreSQL path writes NULL explicitly).

On SQLite a batch is appended to the unindexed ``telemetry_recent`` table, so its commit
writes only the pages at the table's end; every ``compact_rows`` rows the recent rows move
into ``telemetry`` sorted by (DER, time), where each DER's new entries land side by side in
the (DER, time) index. Inserting each batch straight into that index dirtied one leaf page
per DER per batch: 10,000-30,000 samples/s (machine under load) once 2 million rows were stored.
Queries read both tables. A committed batch is durable in WAL mode with
``synchronous=NORMAL``: it survives a crash of the process; a power loss may take back the
last commits (https://sqlite.org/pragma.html#pragma_synchronous).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, Result, Select, Table, bindparam, delete, select, text, union_all

from derms.core.columns import COLUMNS, TelemetryColumns, columns_from_rows, to_ms
from derms.store.db import is_postgres
from derms.store.schema import telemetry, telemetry_latest, telemetry_recent, telemetry_rollup

_RAW = (telemetry, telemetry_recent)

_DERS_WITH_RAW = (
    "WITH RECURSIVE d(i) AS (SELECT MIN(der_idx) FROM telemetry UNION ALL "
    "SELECT (SELECT MIN(der_idx) FROM telemetry WHERE der_idx > d.i) FROM d WHERE d.i IS NOT NULL) "
    "SELECT i FROM d WHERE i IS NOT NULL"
)
"""The distinct DERs of the raw table by one index seek each (a skip scan), so that retention
reads only the expiring prefix of each DER's (DER, time) index range, not the whole table."""

_BUCKET_STATS = (
    "COUNT(*) AS n, AVG(p_w) AS p_avg, MIN(p_w) AS p_min, MAX(p_w) AS p_max, AVG(q_var) AS q_avg, "
    "AVG(v_v) AS v_avg, MIN(v_v) AS v_min, MAX(v_v) AS v_max, AVG(soc) AS soc_avg"
)
"""What a bucket of raw samples reduces to, named as the ``telemetry_rollup`` columns: the one
definition behind both :meth:`TelemetryStore.downsample` and the roll-ups retention stores."""


class TelemetryStore:
    """Telemetry persistence on an engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, *, compact_rows: int = 200_000) -> None:
        if compact_rows <= 0:
            raise ValueError("compact_rows must be positive")
        self.engine = engine
        self.compact_rows = compact_rows
        self._pg = is_postgres(engine)
        cols = ", ".join(COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
        self._sqlite_insert = f"INSERT INTO telemetry_recent ({cols}) VALUES ({marks})"
        self._move_recent = (
            f"INSERT INTO telemetry ({cols}) SELECT {cols} FROM telemetry_recent ORDER BY der_idx, ts_ms"
        )
        conflict = (
            f"ON CONFLICT (der_idx) DO UPDATE SET {updates} WHERE excluded.ts_ms >= telemetry_latest.ts_ms"
        )
        # Rows of this batch only (rowid > ?), in arrival order: the newest sample wins, and
        # at equal times the later arrival, as with the staged merge on PostgreSQL.
        self._merge_recent = (
            f"INSERT INTO telemetry_latest ({cols}) SELECT {cols} FROM telemetry_recent "
            f"WHERE rowid > ? ORDER BY rowid {conflict}"
        )
        self._merge_stage = (
            f"INSERT INTO telemetry_latest ({cols}) SELECT {cols} FROM telemetry_stage {conflict}"
        )

    def ingest(self, batch: TelemetryColumns) -> int:
        """Write a batch and update latest values, in one transaction; returns rows written.

        On SQLite the batch is appended to ``telemetry_recent`` and merged into
        ``telemetry_latest`` from there; the batch that brings ``telemetry_recent`` to
        ``compact_rows`` rows also moves them into ``telemetry``."""
        if len(batch) == 0:
            return 0
        with self.engine.begin() as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            if self._pg:
                self._ingest_pg(dbapi, batch, batch.latest_per_der())
            else:
                cur = dbapi.cursor()
                cur.executemany(self._sqlite_insert, batch.rows())
                # Appends take consecutive rowids, which restart at 1 once the table is emptied
                # (no AUTOINCREMENT), so this batch holds the last len(batch) rowids.
                last = cur.execute("SELECT MAX(rowid) FROM telemetry_recent").fetchone()[0]
                cur.execute(self._merge_recent, (last - len(batch),))
                if last >= self.compact_rows:
                    self._compact(conn)
                cur.close()
        return len(batch)

    def compact(self) -> int:
        """Compact ``telemetry_recent`` now (SQLite; PostgreSQL never fills it); returns rows moved."""
        with self.engine.begin() as conn:
            return self._compact(conn)

    def _compact(self, conn: Connection) -> int:
        """Move the recent rows into ``telemetry`` in (DER, time) order; empty ``telemetry_recent``."""
        if self._pg:
            return 0
        moved = conn.exec_driver_sql(self._move_recent).rowcount
        conn.exec_driver_sql("DELETE FROM telemetry_recent")
        return int(moved)

    def _ingest_pg(self, dbapi: Any, batch: TelemetryColumns, latest: TelemetryColumns) -> None:
        """Binary COPY of the raw rows; the latest rows are COPYed into a session temporary
        table and merged with one ``INSERT ... ON CONFLICT`` (far cheaper than per-row upserts)."""
        columns = ", ".join(COLUMNS)
        with dbapi.cursor() as cur:
            # Telemetry may lose the last instants before a server crash, never consistency.
            cur.execute("SET LOCAL synchronous_commit TO OFF")
            _copy_binary(cur, f"COPY telemetry ({columns}) FROM STDIN (FORMAT BINARY)", batch)
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS telemetry_stage "
                "(LIKE telemetry_latest INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            _copy_binary(cur, f"COPY telemetry_stage ({columns}) FROM STDIN (FORMAT BINARY)", latest)
            cur.execute(self._merge_stage)

    def latest(self, der_idx: Sequence[int] | None = None) -> TelemetryColumns:
        """Latest sample per DER (all DERs, or those listed), ordered by DER."""
        query = select(*(telemetry_latest.c[c] for c in COLUMNS)).order_by(telemetry_latest.c.der_idx)
        if der_idx is not None:
            query = query.where(telemetry_latest.c.der_idx.in_(bindparam("ids", expanding=True)))
        with self.engine.connect() as conn:
            params = {"ids": list(der_idx)} if der_idx is not None else {}
            return _columns(conn.execute(query, params))

    def range(self, der_idx: Sequence[int], start: datetime, end: datetime) -> TelemetryColumns:
        """Samples of the listed DERs with ``start <= ts < end``, ordered by DER then time."""
        parts = [_window(table, start, end) for table in _RAW]
        query = union_all(*parts).order_by(text("der_idx"), text("ts_ms"))
        with self.engine.connect() as conn:
            return _columns(conn.execute(query, {"ids": list(der_idx)}))

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
        samples = union_all(*(_window(table, start, end) for table in _RAW)).subquery("raw")
        raw = select(
            samples.c.der_idx,
            text("(ts_ms / :b) * :b AS bucket_ms"),
            text(_BUCKET_STATS),
        ).group_by(samples.c.der_idx, text("(ts_ms / :b)"))
        stored = (
            select(telemetry_rollup)
            .where(telemetry_rollup.c.der_idx.in_(bindparam("ids", expanding=True)))
            .where(telemetry_rollup.c.interval_s == interval_s)
            .where(telemetry_rollup.c.bucket_ms >= to_ms(start), telemetry_rollup.c.bucket_ms < to_ms(end))
        )
        params = {"ids": list(der_idx), "b": bucket}
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
        expiring = f"der_idx IN ({_DERS_WITH_RAW}) AND ts_ms < :c"
        rollup = text(
            "INSERT INTO telemetry_rollup (der_idx, interval_s, bucket_ms, n, p_avg, p_min, p_max, q_avg, "
            f"v_avg, v_min, v_max, soc_avg) SELECT der_idx, :i, (ts_ms / :b) * :b, {_BUCKET_STATS} "
            f"FROM telemetry WHERE {expiring} GROUP BY der_idx, (ts_ms / :b) "
            "ON CONFLICT (der_idx, interval_s, bucket_ms) DO NOTHING"
        )
        with self.engine.begin() as conn:
            self._compact(conn)
            written = conn.execute(rollup, {"i": rollup_interval_s, "b": bucket, "c": cutoff}).rowcount
            removed = conn.execute(text(f"DELETE FROM telemetry WHERE {expiring}"), {"c": cutoff}).rowcount
        return {"raw_removed": int(removed), "rollups_written": int(written), "cutoff_ms": cutoff}

    def prune_rollups(self, now: datetime, *, keep_days: float) -> int:
        cutoff = to_ms(now) - int(keep_days * 86_400_000)
        with self.engine.begin() as conn:
            return int(
                conn.execute(delete(telemetry_rollup).where(telemetry_rollup.c.bucket_ms < cutoff)).rowcount
            )

    def count(self) -> int:
        """Raw samples stored (both raw tables)."""
        query = "SELECT (SELECT COUNT(*) FROM telemetry) + (SELECT COUNT(*) FROM telemetry_recent)"
        with self.engine.connect() as c:
            return int(c.execute(text(query)).scalar_one())


def _columns(result: Result[Any]) -> TelemetryColumns:
    """Columns from a result; plain tuples, because numpy probes SQLAlchemy rows key by key
    (about 40 ms per 1,000 rows)."""
    return columns_from_rows([tuple(row) for row in result])


def _window(table: Table, start: datetime, end: datetime) -> Select[Any]:
    """Rows of ``table`` for the DERs bound as ``ids`` with ``start <= ts < end``."""
    return (
        select(*(table.c[c] for c in COLUMNS))
        .where(table.c.der_idx.in_(bindparam("ids", expanding=True)))
        .where(table.c.ts_ms >= to_ms(start), table.c.ts_ms < to_ms(end))
    )


_PG_TYPES = ("int4", "int8", "float8", "float8", "float8", "float8", "float8", "int2", "bool", "int2")


def _copy_binary(cur: Any, statement: str, batch: TelemetryColumns) -> None:
    """COPY ``batch`` in PostgreSQL's binary format; NaN measurements become NULL."""
    columns = []
    for name in COLUMNS:
        values = getattr(batch, name)
        if values.dtype.kind == "f":
            obj = values.astype(object)
            obj[np.isnan(values)] = None
            columns.append(obj.tolist())
        else:
            columns.append(values.tolist())
    with cur.copy(statement) as copy:
        copy.set_types(list(_PG_TYPES))
        for row in zip(*columns, strict=True):
            copy.write_row(row)
