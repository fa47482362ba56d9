"""Measurement and verification: delivered demand reduction against the baseline.

Delivered reduction in an interval is ``baseline − actual`` demand [W] (IPMVP Option B/C
"avoided energy use", EVO 10000-1:2022, §4.1 and eq. 1), integrated to energy [Wh] over
event intervals and rolled up per device, site, event and program.

Missing data are explicit: an interval counts only where *both* the baseline and the
actual are finite. Every row reports how many device-intervals were expected and how many
were measured (``coverage``); nothing is filled with zero and nothing is extrapolated, so
a total with ``coverage < 1`` is a lower bound of what was metered, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class MvRow:
    """One line of an M&V report; energies in Wh, powers in W."""

    level: str
    """"device", "site", "event" or "program"."""
    key: str
    event: int | None
    baseline_wh: float
    actual_wh: float
    delivered_wh: float
    intervals_expected: int
    intervals_measured: int
    hours_measured: float
    """Hours in which at least one of the row's devices was measured [h]."""
    committed_w: float | None = None

    @property
    def coverage(self) -> float:
        return self.intervals_measured / self.intervals_expected if self.intervals_expected else float("nan")

    @property
    def complete(self) -> bool:
        return self.intervals_measured == self.intervals_expected

    @property
    def performance(self) -> float | None:
        """Delivered mean power over the measured intervals / committed power; None without a commitment."""
        if not self.committed_w or not self.hours_measured:
            return None
        return float(self.delivered_wh / self.hours_measured / self.committed_w)


def verify(
    baseline_w: np.ndarray,
    actual_w: np.ndarray,
    *,
    interval_s: int,
    event_of_interval: np.ndarray,
    device_ids: list[str],
    site_of_device: np.ndarray,
    site_ids: list[str],
    program_of_device: np.ndarray | None = None,
    program_ids: list[str] | None = None,
    committed_w_by_site: np.ndarray | None = None,
) -> list[MvRow]:
    """M&V rows per device × event, site × event, event and program.

    ``baseline_w`` and ``actual_w`` are demand [W] shaped ``(N_devices, T)``; NaN = not
    measured. ``event_of_interval`` (T,) gives the event number of each interval, −1
    outside events. ``committed_w_by_site`` (sites,) is the reduction each site promised.
    """
    base = np.asarray(baseline_w, float)
    act = np.asarray(actual_w, float)
    if base.shape != act.shape or base.ndim != 2:
        raise ValueError("baseline_w and actual_w must both be (N_devices, T)")
    n, t = base.shape
    events = np.asarray(event_of_interval)
    site = np.asarray(site_of_device)
    if len(events) != t or len(site) != n or len(device_ids) != n:
        raise ValueError("event_of_interval, site_of_device and device_ids must match the arrays")
    program = np.zeros(n, int) if program_of_device is None else np.asarray(program_of_device)
    program_ids = program_ids or ["program"]
    hours = interval_s / 3600.0
    valid = np.isfinite(base) & np.isfinite(act)
    b = np.where(valid, base, 0.0) * hours
    a = np.where(valid, act, 0.0) * hours
    event_numbers = sorted({int(e) for e in events if e >= 0})
    rows: list[MvRow] = []

    def row(level: str, key: str, ev: int | None, dev: np.ndarray, cols: np.ndarray, committed: float | None):
        sub_valid = valid[np.ix_(dev, cols)]
        bw, aw = b[np.ix_(dev, cols)].sum(), a[np.ix_(dev, cols)].sum()
        measured_h = float(sub_valid.any(axis=0).sum() * hours)
        rows.append(
            MvRow(
                level,
                key,
                ev,
                float(bw),
                float(aw),
                float(bw - aw),
                sub_valid.size,
                int(sub_valid.sum()),
                measured_h,
                committed,
            )
        )

    for ev in event_numbers:
        cols = np.flatnonzero(events == ev)
        for i in range(n):
            row("device", device_ids[i], ev, np.array([i]), cols, None)
        for s, sid in enumerate(site_ids):
            devs = np.flatnonzero(site == s)
            if devs.size:
                committed = None if committed_w_by_site is None else float(committed_w_by_site[s])
                row("site", sid, ev, devs, cols, committed)
        committed = None if committed_w_by_site is None else float(np.sum(committed_w_by_site))
        row("event", f"event {ev}", ev, np.arange(n), cols, committed)
    all_cols = np.flatnonzero(events >= 0)
    for p, pid in enumerate(program_ids):
        devs = np.flatnonzero(program == p)
        if devs.size and all_cols.size:
            row("program", pid, None, devs, all_cols, None)
    return rows
