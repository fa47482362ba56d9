from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine

from derms.core import Telemetry
from derms.core.columns import TelemetryColumns, to_ms
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
