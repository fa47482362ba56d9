"""Refreshed baselines of C&I loads under commands: an "X of Y like days" customer baseline.

While a DER is commanded its uncontrolled power is not observed, so its baseline is estimated
from comparable *uncommanded* intervals: NAESB WEQ-015 (M&V of wholesale demand response)
"Baseline Type-I", interval meter data of like days before the event with a same-day
adjustment. The rule is :data:`derms.programs.baselines.CAISO_10_IN_10` by default (the 10
most recent like weekdays in 45 days, at least 5; weekends 4 of 4), computed by
:func:`derms.programs.baselines.like_day_baseline`.

* History: ``dt_s`` interval means of every DER at once, and of each day only the intervals
  the baseline uses (the event period and the one before it), averaged by the database from
  the raw samples, else the retention roll-ups of that interval length. (``TelemetryStore.
  downsample`` reads every interval: 7 s for 100 loads over 45 days on SQLite; this, 0.3 s.)
* Every interval in which a command of the DER was in force (``orchestration_command``
  windows, one query) is missing data, so a day commanded in the event period is no like day.
* The same-day adjustment is multiplicative (capped ±20 %), from the DER's pre-command power
  (the value used before this refresh) in the interval before its run of commands began.
* Days are UTC calendar days (an evening event in the Americas crosses UTC midnight and then
  falls back to the pre-command value); there is no holiday calendar.
* Only :data:`PROFILE_KINDS` (C&I loads): an EV's charging follows its sessions, a thermostat
  or water heater the weather and its tank, storage its own state and PV the sun.

A DER whose run began on an earlier day or in the day's first interval, or with fewer than
``min_days`` clean like days, gets no refreshed value: the caller keeps its pre-command value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, func, select, union_all

from derms.core.columns import to_ms
from derms.core.der import DerKind
from derms.orchestration.tables import commands
from derms.programs.baselines import CAISO_10_IN_10, LikeDayRule, like_day_baseline, with_overrides
from derms.store.schema import telemetry, telemetry_recent, telemetry_rollup

DAY_S = 86_400
PROFILE_KINDS = frozenset({DerKind.CI_LOAD})
"""DER kinds whose baseline under commands is refreshed from like days."""


@dataclass(frozen=True, slots=True)
class Commanded:
    """A DER under a run of commands."""

    der_idx: int
    """Its registry row (the telemetry store's key)."""
    since: datetime
    """When its run of commands began."""
    pre_w: float
    """Its power before the run [W], derms sign (consumption negative)."""


def refreshed_baselines(
    engine: Engine,
    commanded: Mapping[str, Commanded],
    now: datetime,
    *,
    dt_s: float = 900.0,
    rule: LikeDayRule = CAISO_10_IN_10,
) -> dict[str, float]:
    """Like-day baseline power [W] (derms sign) of the interval holding ``now`` for each DER of
    ``commanded`` that has one; the others are left out (see the module docstring)."""
    step = int(dt_s)
    if step != dt_s or DAY_S % step or (DAY_S // step) % 24:
        raise ValueError("dt_s must divide a day into a multiple of 24 intervals")
    k = DAY_S // step
    today = datetime.fromtimestamp(now.timestamp() // DAY_S * DAY_S, UTC)
    first = today - timedelta(days=rule.lookback_days)
    slot_now = int((now - today).total_seconds()) // step
    runs = {}
    for der_id, c in commanded.items():
        start = int((c.since - today).total_seconds()) // step
        if 1 <= start <= slot_now:  # began today, after the day's first interval
            runs[der_id] = (c, start)
    if not runs:
        return {}
    n_days = rule.lookback_days + 1  # the look-back, then today (the event day)
    row = {c.der_idx: i for i, (c, _) in enumerate(runs.values())}
    load = np.full((len(runs), n_days * k), np.nan)  # demand [W]: −P
    lo = min(start for _, start in runs.values()) - 1
    with engine.connect() as conn:
        for der_idx, at, p_w in interval_means(conn, list(row), first, today, (lo, slot_now + 1), step):
            load[row[der_idx], at] = -p_w
        blank_commanded(conn, load, {d: row[c.der_idx] for d, (c, _) in runs.items()}, first, step)
    adj_h = step / 3600
    one_before = with_overrides(rule, adjustment_start_h=adj_h, adjustment_hours=adj_h)
    days = np.arange(np.datetime64(first.date(), "D"), np.datetime64(today.date(), "D") + 1)
    out = {}
    for der_id, (c, start) in runs.items():
        matrix = load[row[c.der_idx]].reshape(n_days, k)
        matrix[-1, start - 1] = -c.pre_w  # the same-day adjustment window: the pre-command power
        result = like_day_baseline(matrix, days, n_days - 1, start, slot_now + 1, one_before)
        value = float(result.adjusted[slot_now])  # like days may be commanded outside the event
        if np.isfinite(value):
            out[der_id] = -value
    return out


def interval_means(
    conn: Connection, idxs: list[int], first: datetime, end: datetime, slots: tuple[int, int], step: int
) -> list[tuple[int, int, float]]:
    """(DER, interval from ``first``, mean active power [W]) of the intervals ``slots[0]`` up to
    ``slots[1]`` of each day in ``[first, end)``: raw samples averaged by the database, else the
    retention roll-ups of the same interval length."""
    t0, t1, b, day = to_ms(first), to_ms(end), step * 1000, DAY_S * 1000
    lo, hi = slots[0] * b, slots[1] * b

    def window(ts: Any) -> list[Any]:
        return [ts >= t0, ts < t1, (ts - t0) % day >= lo, (ts - t0) % day < hi]

    raw = union_all(
        *(
            select(t.c.der_idx, ((t.c.ts_ms - t0) // b).label("at"), t.c.p_w).where(
                t.c.der_idx.in_(idxs), *window(t.c.ts_ms)
            )
            for t in (telemetry, telemetry_recent)
        )
    ).subquery()
    r = telemetry_rollup.c
    rows = {
        (i, at): p
        for i, at, p in conn.execute(
            select(r.der_idx, (r.bucket_ms - t0) // b, r.p_avg).where(
                r.der_idx.in_(idxs), r.interval_s == step, *window(r.bucket_ms)
            )
        )
    }
    avg = select(raw.c.der_idx, raw.c.at, func.avg(raw.c.p_w)).group_by(raw.c.der_idx, raw.c.at)
    rows.update(((i, at), p) for i, at, p in conn.execute(avg))
    return [(i, int(at), float(p)) for (i, at), p in rows.items() if p is not None]


def blank_commanded(
    conn: Connection, load: np.ndarray, rows: Mapping[str, int], first: datetime, step: int
) -> None:
    """Mark as missing every interval of ``load`` in which a command of the DER was in force."""
    last = first + timedelta(seconds=load.shape[1] * step)
    windows = conn.execute(
        select(commands.c.der_id, commands.c.start, commands.c.end).where(
            commands.c.der_id.in_(list(rows)), commands.c.end > first, commands.c.start < last
        )
    ).all()
    t0 = first.timestamp()
    for der_id, start, end in windows:
        lo = max(int((start.timestamp() - t0) // step), 0)
        hi = int(-((t0 - end.timestamp()) // step))  # ceiling: a partly commanded interval is out too
        load[rows[der_id], lo:hi] = np.nan
