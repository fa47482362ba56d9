"""Telemetry ingest throughput and fleet roll-up latency.

Prints one JSON object:

* ``ingest``: sustained samples/s into SQLite (WAL) and PostgreSQL for a 10,000-DER fleet
  reporting every interval (one batch per interval, raw insert plus latest-value upsert),
  timed after ``--prefill`` intervals are already stored (an index that is fast while
  small can slow down as it grows), against a baseline in the same run: SQLAlchemy Core
  ``insert()`` with a list of dicts. ``samples_per_s_median`` is the median batch;
  ``samples_per_s_mean`` is all timed samples over all timed seconds, so it includes the
  batches that also move SQLite's recent rows into the raw table. A sample is one row
  (P, Q, V, f, SoC, status, availability, quality); ``values_per_s`` counts the five
  measurements in it.
* ``rollup``: per-feeder roll-up latency for 100,000 DERs on 100 feeders, against a pandas
  ``groupby`` baseline computed from the same arrays.

Medians over repeats; the machine is small and shared, so read medians, not single runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from derms.core import Capabilities, Der, DerKind, Site
from derms.core.columns import COLUMNS, TelemetryColumns
from derms.fleet import FleetState, rollup
from derms.store import make_engine, upgrade
from derms.store.schema import telemetry
from derms.store.telemetry import TelemetryStore

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
T0_MS = 1_784_000_000_000


def make_batch(n_der: int, step: int, rng: np.random.Generator) -> TelemetryColumns:
    der = np.arange(n_der, dtype=np.int32)
    return TelemetryColumns.from_arrays(
        der,
        np.full(n_der, T0_MS + step * 60_000, np.int64),
        p_w=rng.normal(0, 3000, n_der),
        q_var=rng.normal(0, 500, n_der),
        v_v=rng.normal(230, 3, n_der),
        f_hz=np.full(n_der, 60.0),
        soc=np.where(der % 3 == 0, rng.uniform(0, 1, n_der), np.nan),
        status=np.full(n_der, 3),
    )


def prefill(store: TelemetryStore, n_der: int, steps: int, rng: np.random.Generator) -> None:
    """Store ``steps`` intervals of the fleet before timing, five intervals per batch."""
    for first in range(0, steps, 5):
        parts = [make_batch(n_der, step, rng) for step in range(first, min(first + 5, steps))]
        store.ingest(TelemetryColumns(**{c: np.concatenate([getattr(p, c) for p in parts]) for c in COLUMNS}))


def time_ingest(
    store: TelemetryStore, n_der: int, first: int, steps: int, rng: np.random.Generator
) -> list[float]:
    """Seconds per batch of one interval, for intervals ``first`` to ``first + steps - 1``."""
    seconds = []
    for step in range(first, first + steps):
        batch = make_batch(n_der, step, rng)
        t = time.perf_counter()
        store.ingest(batch)
        seconds.append(time.perf_counter() - t)
    return seconds


def time_baseline(engine, n_der: int, steps: int, rng: np.random.Generator) -> list[float]:  # type: ignore[no-untyped-def]
    rates = []
    for step in range(steps):
        batch = make_batch(n_der, 10_000 + step, rng)
        rows = [
            dict(
                zip(
                    (
                        "der_idx",
                        "ts_ms",
                        "p_w",
                        "q_var",
                        "v_v",
                        "f_hz",
                        "soc",
                        "status",
                        "available",
                        "quality",
                    ),
                    r,
                    strict=True,
                )
            )
            for r in batch.rows()
        ]
        t = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(telemetry.insert(), rows)
        rates.append(n_der / (time.perf_counter() - t))
    return rates


def bench_database(name: str, url: str, n_der: int, steps: int, prefill_steps: int) -> dict[str, object]:
    engine = make_engine(url)
    upgrade(engine)
    rng = np.random.default_rng(1)
    store = TelemetryStore(engine)
    prefill(store, n_der, prefill_steps, rng)
    stored = store.count()
    seconds = time_ingest(store, n_der, prefill_steps, steps, rng)
    base = time_baseline(engine, n_der, max(2, steps // 3), rng)
    engine.dispose()
    ours = [n_der / s for s in seconds]
    median, base_median = statistics.median(ours), statistics.median(base)
    return {
        "database": name,
        "ders": n_der,
        "rows_stored_before": stored,
        "batches": steps,
        "samples_per_s_median": round(median),
        "samples_per_s_mean": round(n_der * steps / sum(seconds)),
        "samples_per_s_min": round(min(ours)),
        "values_per_s_median": round(median * 5),
        "baseline": "SQLAlchemy Core insert() with a list of dicts, raw rows only",
        "baseline_samples_per_s_median": round(base_median),
        "speedup_vs_baseline": round(median / base_median, 2),
    }


def bench_rollup(n_der: int, n_feeders: int, repeats: int) -> dict[str, object]:
    rng = np.random.default_rng(2)
    state = FleetState(capacity=n_der)
    kinds = list(DerKind)
    caps = {
        k: Capabilities(w_max=5000, w_max_consume=5000, wh_max=10000 if k.is_storage else 0) for k in kinds
    }
    sites = [Site(f"s{f}", "c", "t", feeder_id=f"f{f}") for f in range(n_feeders)]
    state.register(
        (
            i,
            Der(f"d{i}", "s", kinds[i % len(kinds)], caps[kinds[i % len(kinds)]], "sim", str(i), "t"),
            sites[i % n_feeders],
        )
        for i in range(n_der)
    )
    state.apply_telemetry(
        TelemetryColumns.from_arrays(
            np.arange(n_der),
            np.full(n_der, T0_MS),
            p_w=rng.normal(0, 3000, n_der),
            soc=rng.uniform(0, 1, n_der),
        )
    )
    ours = []
    for _ in range(repeats):
        t = time.perf_counter()
        rollup(state)
        ours.append(time.perf_counter() - t)
    up, down = state.flexibility()
    frame = pd.DataFrame(
        {"feeder": state.feeder, "online": state.online, "p": state.p_w, "up": up, "down": down}
    )
    base = []
    for _ in range(max(5, repeats // 5)):
        t = time.perf_counter()
        up, down = state.flexibility()
        frame.assign(up=up, down=down).groupby("feeder").agg(
            ders=("p", "size"),
            online=("online", "sum"),
            p=("p", "sum"),
            up=("up", "sum"),
            down=("down", "sum"),
        )
        base.append(time.perf_counter() - t)
    median, base_median = statistics.median(ours), statistics.median(base)
    return {
        "ders": n_der,
        "feeders": n_feeders,
        "repeats": repeats,
        "latency_ms_median": round(median * 1000, 3),
        "latency_ms_max": round(max(ours) * 1000, 3),
        "baseline": "flexibility + pandas groupby on the same arrays",
        "baseline_ms_median": round(base_median * 1000, 3),
        "speedup_vs_baseline": round(base_median / median, 2),
    }


def postgres_url() -> tuple[str | None, str | None]:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2, autocommit=True) as conn:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            conn.execute(f'CREATE SCHEMA "{schema}"')
        return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema
    except psycopg.Error as exc:
        print(json.dumps({"warning": f"PostgreSQL unreachable, skipped: {exc}"}))
        return None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for the smoke test")
    parser.add_argument(
        "--prefill",
        type=int,
        default=None,
        help="fleet intervals stored before timing (default 200; quick 5)",
    )
    args = parser.parse_args()
    n_der, steps, fleet_n, repeats = (1000, 3, 10_000, 5) if args.quick else (10_000, 30, 100_000, 50)
    prefill_steps = args.prefill if args.prefill is not None else (5 if args.quick else 200)
    results: dict[str, object] = {
        "benchmark": "ingest",
        "quick": args.quick,
        "load_average_before": os.getloadavg(),
        "ingest": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["ingest"].append(
            bench_database("sqlite", f"sqlite:///{Path(tmp) / 'bench.sqlite'}", n_der, steps, prefill_steps)
        )  # type: ignore[union-attr]
    url, schema = postgres_url()
    if url:
        try:
            results["ingest"].append(bench_database("postgresql", url, n_der, steps, prefill_steps))  # type: ignore[union-attr]
        finally:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    results["rollup"] = bench_rollup(fleet_n, 100, repeats)
    results["targets"] = {
        "sqlite_samples_per_s": 100_000,
        "postgresql_samples_per_s": 50_000,
        "rollup_100k_ms": 10,
    }
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
