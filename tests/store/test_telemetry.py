from datetime import timedelta

import numpy as np
import pytest
from alembic import command
from sqlalchemy import Engine

from derms.core import Telemetry
from derms.core.columns import TelemetryColumns, to_ms
from derms.store.db import alembic_config, upgrade
from derms.store.telemetry import TelemetryStore
from tests.conftest import T0


def batch(n_der: int, n_steps: int, step_s: int = 60) -> TelemetryColumns:
    der = np.tile(np.arange(n_der, dtype=np.int32), n_steps)
    ts = np.repeat(to_ms(T0) + np.arange(n_steps, dtype=np.int64) * step_s * 1000, n_der)
    p = der * 100.0 + np.repeat(np.arange(n_steps), n_der)
    soc = np.where(der % 2 == 0, 0.5, np.nan)  # odd DERs do not report SoC
    return TelemetryColumns.from_arrays(
        der, ts, p_w=p, v_v=np.full(len(der), 230.0), soc=soc, status=np.full(len(der), 3)
    )


def test_ingest_latest_range(db_engine: Engine) -> None:
    store = TelemetryStore(db_engine)
    assert store.ingest(batch(5, 10)) == 50
    assert store.count() == 50
    latest = store.latest()
    assert latest.der_idx.tolist() == [0, 1, 2, 3, 4]
    assert latest.p_w.tolist() == [9.0, 109.0, 209.0, 309.0, 409.0]
    assert np.isnan(latest.soc[1]) and latest.soc[0] == 0.5  # missing stays missing, not zero
    rng = store.range([2], T0 + timedelta(minutes=3), T0 + timedelta(minutes=6))
    assert rng.p_w.tolist() == [203.0, 204.0, 205.0]
    assert store.latest([3]).p_w.tolist() == [309.0]


def test_latest_ignores_older_late_arrivals(db_engine: Engine) -> None:
    store = TelemetryStore(db_engine)
    store.ingest(batch(2, 5))
    late = TelemetryColumns.from_arrays(np.array([0]), np.array([to_ms(T0)]), p_w=np.array([-1.0]))
    store.ingest(late)
    assert store.latest([0]).p_w.tolist() == [4.0]


def test_downsample_and_retention(db_engine: Engine) -> None:
    store = TelemetryStore(db_engine)
    store.ingest(batch(3, 60))  # one hour of minutes
    buckets = store.downsample([1], T0, T0 + timedelta(hours=1), 900)
    assert [b["n"] for b in buckets] == [15, 15, 15, 15]
    assert buckets[0]["p_avg"] == pytest.approx(100 + 7.0) and buckets[0]["p_max"] == 114.0
    result = store.apply_retention(
        T0 + timedelta(hours=1, minutes=20), raw_days=1 / 24, rollup_interval_s=900
    )
    assert result["raw_removed"] == 3 * 15  # first 15-minute bucket is older than the one-hour window
    again = store.downsample([1], T0, T0 + timedelta(hours=1), 900)
    assert result["rollups_written"] == 3
    assert [b["n"] for b in again] == [15, 15, 15, 15]
    assert [b["p_avg"] for b in again] == pytest.approx([b["p_avg"] for b in buckets])
    assert store.count() == 3 * 45
    assert store.prune_rollups(T0 + timedelta(days=30), keep_days=7) == 3


def test_columns_from_core_samples_refuse_unknown_der() -> None:
    samples = [Telemetry("a", T0, p_w=1.0), Telemetry("b", T0, soc=0.3)]
    cols = TelemetryColumns.from_samples(samples, {"a": 0, "b": 1})
    assert cols.to_samples(["a", "b"]) == samples
    with pytest.raises(KeyError, match="unknown DERs"):
        TelemetryColumns.from_samples(samples, {"a": 0})


@pytest.mark.parametrize("compact_rows", [1, 7, 1_000_000])
def test_queries_read_recent_and_compacted_rows_alike(sqlite_engine: Engine, compact_rows: int) -> None:
    """Compacting after every batch, part-way through, or never gives the same answers."""
    store = TelemetryStore(sqlite_engine, compact_rows=compact_rows)
    for step in range(6):  # six one-minute batches of four DERs
        whole = batch(4, 6)
        store.ingest(whole.take(whole.ts_ms == to_ms(T0) + step * 60_000))
    with sqlite_engine.connect() as conn:
        recent = conn.exec_driver_sql("SELECT COUNT(*) FROM telemetry_recent").scalar_one()
    assert recent == {1: 0, 7: 0, 1_000_000: 24}[compact_rows]  # 7: compacted at 8, 16 and 24 rows
    assert store.count() == 24
    assert store.latest().p_w.tolist() == [5.0, 105.0, 205.0, 305.0]
    rng = store.range([1, 3], T0 + timedelta(minutes=1), T0 + timedelta(minutes=4))
    assert rng.der_idx.tolist() == [1, 1, 1, 3, 3, 3]
    assert rng.p_w.tolist() == [101.0, 102.0, 103.0, 301.0, 302.0, 303.0]
    buckets = store.downsample([2], T0, T0 + timedelta(minutes=6), 180)
    assert [(b["n"], b["p_avg"], b["p_max"]) for b in buckets] == [(3, 201.0, 202.0), (3, 204.0, 205.0)]


def test_compaction_keeps_late_and_duplicate_samples(sqlite_engine: Engine) -> None:
    store = TelemetryStore(sqlite_engine, compact_rows=10)
    store.ingest(batch(2, 5))  # ten rows: compacted at once
    assert store.compact() == 0
    late = TelemetryColumns.from_arrays(np.array([0, 1]), np.full(2, to_ms(T0)), p_w=np.array([-1.0, -2.0]))
    store.ingest(late)  # older than what is stored: kept raw, latest unchanged
    assert store.latest().p_w.tolist() == [4.0, 104.0]
    again = TelemetryColumns.from_arrays(np.array([1]), np.array([to_ms(T0) + 240_000]), p_w=np.array([7.0]))
    store.ingest(again)  # same DER and time as the stored newest: the later arrival wins latest
    assert store.latest([1]).p_w.tolist() == [7.0]
    assert store.compact() == 3
    assert store.count() == 13
    assert sorted(store.range([0], T0, T0 + timedelta(minutes=1)).p_w) == [-1.0, 0.0]
    assert sorted(store.range([1], T0 + timedelta(minutes=4), T0 + timedelta(minutes=5)).p_w) == [7.0, 104.0]


def test_retention_compacts_recent_rows_first(sqlite_engine: Engine) -> None:
    store = TelemetryStore(sqlite_engine, compact_rows=1_000_000)
    store.ingest(batch(3, 60))  # all of it still in telemetry_recent
    result = store.apply_retention(T0 + timedelta(hours=1, minutes=20), raw_days=1 / 24)
    assert (result["raw_removed"], result["rollups_written"]) == (45, 3)
    assert store.count() == 135
    assert store.range([2], T0, T0 + timedelta(minutes=15)).p_w.tolist() == []
    assert [b["n"] for b in store.downsample([2], T0, T0 + timedelta(minutes=30), 900)] == [15, 15]


def test_compact_rows_must_be_positive(sqlite_engine: Engine) -> None:
    with pytest.raises(ValueError, match="compact_rows"):
        TelemetryStore(sqlite_engine, compact_rows=0)


def test_migration_core_0002_round_trip_keeps_recent_rows(sqlite_engine: Engine) -> None:
    store = TelemetryStore(sqlite_engine, compact_rows=1_000_000)
    store.ingest(batch(2, 3))
    command.downgrade(alembic_config(sqlite_engine), "core_0001")
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM telemetry").scalar_one() == 6
        indexes = {r[1] for r in conn.exec_driver_sql("PRAGMA index_list(telemetry)")}
    assert indexes == {"ix_telemetry_der_ts", "ix_telemetry_ts"}
    upgrade(sqlite_engine)
    assert store.count() == 6 and store.range([1], T0, T0 + timedelta(hours=1)).p_w.tolist() == [
        100.0,
        101.0,
        102.0,
    ]
