"""Refreshed baselines of commanded loads (X of Y like days, CAISO 10-in-10) from a real
telemetry store and real command windows, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, insert

from derms.core.columns import TelemetryColumns
from derms.orchestration.baseline_refresh import Commanded, refreshed_baselines
from derms.orchestration.tables import commands, plans
from derms.store.telemetry import TelemetryStore

TODAY = datetime(2026, 7, 15, tzinfo=UTC)  # a Wednesday
NOW = TODAY + timedelta(hours=18, minutes=7)  # interval 72 of 96
SINCE = TODAY + timedelta(hours=16, minutes=5)  # the run of commands began in interval 64
STEP = 900
K = 96


def demand(der: int, days_ago: int, slot: int, half: int) -> float:
    """A daily profile (afternoon peak) whose level drifts from day to day [W]; ``half`` is
    the first or second sample of the 15-minute interval."""
    shape = 1.0 + 0.6 * np.sin(np.pi * slot / K) ** 2
    return (20_000.0 + 5_000.0 * der) * shape + 150.0 * days_ago + 40.0 * half


def prefill(engine: Engine, history: dict[int, int]) -> None:
    """``history``: DER → days of history before today; two samples per 15 minutes."""
    idx, ts, p = [], [], []
    for der, n_days in history.items():
        for days_ago in range(1, n_days + 1):
            day = TODAY - timedelta(days=days_ago)
            for slot in range(K):
                for half in (0, 1):
                    idx.append(der)
                    ts.append(int((day + timedelta(seconds=slot * STEP + half * 450)).timestamp() * 1000))
                    p.append(-demand(der, days_ago, slot, half))
    TelemetryStore(engine).ingest(TelemetryColumns.from_arrays(np.array(idx), np.array(ts), p_w=np.array(p)))


def command_window(engine: Engine, der: int, days_ago: int, start_h: float, end_h: float) -> None:
    day = TODAY - timedelta(days=days_ago)
    with engine.begin() as conn:
        plan_id = f"p-{der}-{days_ago}-{start_h}"
        conn.execute(
            insert(plans).values(
                id=plan_id,
                created_at=day,
                objective_ids=[],
                solver="test",
                status="optimal",
                inputs_digest="x",
                inputs=b"",
                setpoints=1,
            )
        )
        conn.execute(
            insert(commands).values(
                id=f"c-{plan_id}",
                plan_id=plan_id,
                der_id=f"load-{der}",
                protocol="sim",
                start=day + timedelta(hours=start_h),
                end=day + timedelta(hours=end_h),
                control={"kind": "active_power_target", "w": -1.0},
                binding="",
                detail="",
                state="superseded",
                attempts=1,
                updated_at=day,
            )
        )


def expected(der: int, like_days: list[int], pre_w: float) -> float:
    """CAISO 10-in-10 by hand: the mean of the like days' interval, scaled by the pre-command
    demand over the like days' demand in the interval before the run (within ±20 %)."""
    chosen = like_days[:10]
    at_now = np.mean([(demand(der, d, 72, 0) + demand(der, d, 72, 1)) / 2 for d in chosen])
    before = np.mean([(demand(der, d, 63, 0) + demand(der, d, 63, 1)) / 2 for d in chosen])
    return -float(at_now * np.clip(-pre_w / before, 0.8, 1.2))


def weekdays_back(n: int, skip: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    return [d for d in range(1, n + 1) if (TODAY - timedelta(days=d)).weekday() < 5 and d not in skip]


# Like-day demand in the interval before the run: about 30.4 kW (DER 0) and 37.7 kW (DER 1):
# adjustments within the ±20 % cap, capped below and capped above.
@pytest.mark.parametrize("pre_w", [-33_000.0, -20_000.0, -50_000.0])
def test_commanded_days_are_not_like_days(db_engine: Engine, pre_w: float) -> None:
    prefill(db_engine, {0: 20, 1: 20, 2: 3})
    # DER 0: commanded in the event period two weekdays ago and five days ago (a Friday).
    command_window(db_engine, 0, 1, 17.0, 19.0)
    command_window(db_engine, 0, 5, 15.75, 16.25)  # only the interval before the run: out too
    # DER 1: commanded in the morning only; that day is still a like day.
    command_window(db_engine, 1, 1, 6.0, 8.0)
    commanded = {f"load-{d}": Commanded(d, SINCE, pre_w) for d in (0, 1, 2)}
    got = refreshed_baselines(db_engine, commanded, NOW, dt_s=STEP)

    assert set(got) == {"load-0", "load-1"}  # DER 2: 3 days of history, fewer than 5 like days
    assert got["load-0"] == pytest.approx(expected(0, weekdays_back(20, {1, 5}), pre_w), rel=1e-9)
    assert got["load-1"] == pytest.approx(expected(1, weekdays_back(20), pre_w), rel=1e-9)
    assert got["load-0"] != pytest.approx(expected(0, weekdays_back(20), pre_w), rel=1e-6)


def test_too_little_history_or_a_run_from_yesterday_falls_back(db_engine: Engine) -> None:
    prefill(db_engine, {0: 6, 1: 20})
    assert len(weekdays_back(6)) == 4  # DER 0: 4 like days, 5 needed
    for days_ago in range(1, 16):  # DER 1: every afternoon of the last 15 days commanded
        command_window(db_engine, 1, days_ago, 12.0, 20.0)
    assert len(weekdays_back(20, set(range(1, 16)))) == 3
    commanded = {"load-0": Commanded(0, SINCE, -30_000.0), "load-1": Commanded(1, SINCE, -30_000.0)}
    assert refreshed_baselines(db_engine, commanded, NOW, dt_s=STEP) == {}
    prefill_more = {"load-0": Commanded(0, TODAY - timedelta(minutes=30), -30_000.0)}
    assert refreshed_baselines(db_engine, prefill_more, NOW, dt_s=STEP) == {}  # began yesterday


def test_history_compacted_by_retention_gives_the_same_baseline(db_engine: Engine) -> None:
    prefill(db_engine, {0: 20})
    command_window(db_engine, 0, 1, 17.0, 19.0)
    commanded = {"load-0": Commanded(0, SINCE, -33_000.0)}
    raw = refreshed_baselines(db_engine, commanded, NOW, dt_s=STEP)
    store = TelemetryStore(db_engine)
    done = store.apply_retention(NOW, raw_days=0.5, rollup_interval_s=STEP)
    assert done["raw_removed"] == 20 * K * 2 and done["rollups_written"] == 20 * K
    assert refreshed_baselines(db_engine, commanded, NOW, dt_s=STEP) == pytest.approx(raw, rel=1e-12)
    assert raw["load-0"] == pytest.approx(expected(0, weekdays_back(20, {1}), -33_000.0), rel=1e-9)
