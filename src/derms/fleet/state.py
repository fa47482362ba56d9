"""The columnar fleet state.

Row ``i`` is the DER whose registry index (``ders.idx``) is ``i``, so telemetry columns index
it directly. Kinds are stored as int8 codes (position in ``list(DerKind)``), feeders as int32
positions in :attr:`FleetState.feeder_ids` (−1 = not mapped to a feeder). Kind-specific
state (EV need and departure, indoor temperature, tank energy; :mod:`derms.core.device_state`)
is held beside the telemetry with the time of its report (``state_ms``), so a reader can tell
stale state from fresh (:meth:`FleetState.fresh_state`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from numpy.typing import NDArray

from derms.core.columns import TelemetryColumns
from derms.core.der import Der, DerKind
from derms.core.device_state import STATE_FIELDS, StateColumns
from derms.core.site import Site

KIND_CODES: dict[DerKind, int] = {kind: code for code, kind in enumerate(DerKind)}
STORAGE_CODES = np.array([KIND_CODES[k] for k in DerKind if k.is_storage], np.int8)
GENERATION_CODES = np.array([KIND_CODES[k] for k in DerKind if k.is_generation], np.int8)
LOAD_CODES = np.array([KIND_CODES[k] for k in DerKind if k.is_load], np.int8)

SOC_MARGIN = 0.02
"""Storage within this fraction of empty (full) offers no more discharge (charge)."""

_FLOAT_COLUMNS = (
    "p_w",
    "q_var",
    "v_v",
    "soc",
    "last_seen_ms",
    "w_max",
    "w_max_consume",
    "wh_max",
    "var_max_inject",
    "var_max_absorb",
    "ramp_w_per_s",
    "r_k_per_w",
    "c_j_per_k",
    "cop",
    *STATE_FIELDS,
    "state_ms",
)


class FleetState:
    """One row per DER: identity, ratings, latest measurements, kind-specific state and
    availability."""

    def __init__(self, capacity: int = 1024) -> None:
        self.der_ids: list[str | None] = [None] * capacity
        self.index: dict[str, int] = {}
        self.feeder_ids: list[str] = []
        self._feeder_pos: dict[str, int] = {}
        self.tenant_ids: list[str] = []
        self._tenant_pos: dict[str, int] = {}
        self.kind = np.full(capacity, -1, np.int8)
        self.feeder = np.full(capacity, -1, np.int32)
        self.tenant = np.full(capacity, -1, np.int32)
        self.registered = np.zeros(capacity, bool)
        self._caps_cache: tuple[NDArray[np.float64], ...] | None = None
        self.enabled = np.zeros(capacity, bool)
        self.online = np.zeros(capacity, bool)
        self.available = np.zeros(capacity, bool)
        for name in _FLOAT_COLUMNS:
            setattr(self, name, np.full(capacity, np.nan))

    # -- sizing and registration -----------------------------------------------------

    def __len__(self) -> int:
        return len(self.kind)

    def _grow(self, needed: int) -> None:
        size = len(self)
        if needed <= size:
            return
        new = max(needed, size * 2)
        extra = new - size
        self.der_ids.extend([None] * extra)
        for name, fill in (("kind", -1), ("feeder", -1), ("tenant", -1)):
            setattr(
                self,
                name,
                np.concatenate([getattr(self, name), np.full(extra, fill, getattr(self, name).dtype)]),
            )
        for name in ("registered", "enabled", "online", "available"):
            setattr(self, name, np.concatenate([getattr(self, name), np.zeros(extra, bool)]))
        for name in _FLOAT_COLUMNS:
            setattr(self, name, np.concatenate([getattr(self, name), np.full(extra, np.nan)]))

    def feeder_position(self, feeder_id: str | None) -> int:
        if feeder_id is None:
            return -1
        pos = self._feeder_pos.get(feeder_id)
        if pos is None:
            pos = self._feeder_pos[feeder_id] = len(self.feeder_ids)
            self.feeder_ids.append(feeder_id)
        return pos

    def _tenant_position(self, tenant_id: str) -> int:
        pos = self._tenant_pos.get(tenant_id)
        if pos is None:
            pos = self._tenant_pos[tenant_id] = len(self.tenant_ids)
            self.tenant_ids.append(tenant_id)
        return pos

    def register(self, items: Iterable[tuple[int, Der, Site | None]]) -> None:
        """Add or refresh DERs at their registry indices (``ders.idx``)."""
        self._caps_cache = None
        for row, der, site in items:
            self._grow(row + 1)
            self.der_ids[row] = der.id
            self.index[der.id] = row
            caps = der.capabilities
            self.kind[row] = KIND_CODES[der.kind]
            self.feeder[row] = self.feeder_position(site.feeder_id if site else None)
            self.tenant[row] = self._tenant_position(der.tenant_id)
            self.registered[row] = True
            self.enabled[row] = der.enabled
            self.w_max[row] = caps.w_max
            self.w_max_consume[row] = caps.w_max_consume
            self.wh_max[row] = caps.wh_max
            self.var_max_inject[row] = caps.var_max_inject
            self.var_max_absorb[row] = caps.var_max_absorb
            self.ramp_w_per_s[row] = np.nan if caps.ramp_w_per_s is None else caps.ramp_w_per_s
            for name in ("r_k_per_w", "c_j_per_k", "cop"):
                value = getattr(caps, name)
                getattr(self, name)[row] = np.nan if value is None else value

    def set_feeders(self, der_rows: Sequence[int], feeder_ids: Sequence[str | None]) -> None:
        """Move DERs to other feeders (after a switch operation or an outage)."""
        self.feeder[np.asarray(der_rows, np.int64)] = [self.feeder_position(f) for f in feeder_ids]

    # -- updates from events -----------------------------------------------------------

    def apply_telemetry(self, cols: TelemetryColumns) -> int:
        """Apply a batch (newest sample per DER wins; older than what we hold is ignored).

        A DER that reports is online; ``available`` follows the sample. Missing (NaN)
        measurements keep the previous value. Returns how many rows changed.
        """
        latest = cols.latest_per_der()
        rows = latest.der_idx.astype(np.int64)
        inside = (rows >= 0) & (rows < len(self))
        rows = rows[inside]
        keep = self.registered[rows]
        rows = rows[keep]
        ts = latest.ts_ms[inside][keep].astype(np.float64)
        newer = ~(ts < self.last_seen_ms[rows])  # NaN last_seen compares False -> newer
        rows, ts = rows[newer], ts[newer]
        sel = np.flatnonzero(inside)[keep][newer]
        for name in ("p_w", "q_var", "v_v", "soc"):
            values = getattr(latest, name)[sel]
            column = getattr(self, name)
            given = ~np.isnan(values)
            column[rows[given]] = values[given]
        self.last_seen_ms[rows] = ts
        self.online[rows] = True
        self.available[rows] = latest.available[sel]
        return len(rows)

    def apply_device_state(self, cols: StateColumns) -> int:
        """Apply kind-specific reports (:mod:`derms.core.device_state`): a report newer than the
        one held replaces all of a row's kind-specific columns and sets ``state_ms``; within a
        batch the last report of a row wins. Returns how many rows changed."""
        keep = (cols.rows >= 0) & (cols.rows < len(self))
        keep[keep] &= self.registered[cols.rows[keep]]
        keep[keep] &= ~(cols.ts_ms[keep] < self.state_ms[cols.rows[keep]])  # NaN held -> newer
        rows = cols.rows[keep]
        for name in STATE_FIELDS:
            getattr(self, name)[rows] = cols.values[name][keep]
        self.state_ms[rows] = cols.ts_ms[keep]
        return len(np.unique(rows))

    def fresh_state(self, now_ms: float, max_age_s: float) -> NDArray[np.bool_]:
        """Rows whose kind-specific state was reported at most ``max_age_s`` before ``now_ms``."""
        return now_ms - self.state_ms <= max_age_s * 1000.0

    def set_online(self, der_id: str, online: bool) -> None:
        row = self.index.get(der_id)
        if row is not None:
            self.online[row] = online
            if not online:
                self.available[row] = False

    def mark_stale(self, now_ms: int, timeout_s: float) -> NDArray[np.int64]:
        """Take offline every online DER not heard from for ``timeout_s``; returns their rows."""
        stale = self.online & (now_ms - self.last_seen_ms > timeout_s * 1000)
        rows = np.flatnonzero(stale)
        self.online[rows] = False
        self.available[rows] = False
        return rows

    # -- derived quantities ------------------------------------------------------------

    def dispatchable(self) -> NDArray[np.bool_]:
        return self.registered & self.enabled & self.online & self.available

    def _rating_caps(self) -> tuple[NDArray[np.float64], ...]:
        """Per-kind rating terms of :meth:`power_bounds`, recomputed only after registration."""
        if self._caps_cache is None or len(self._caps_cache[0]) != len(self):
            is_storage = np.isin(self.kind, STORAGE_CODES)
            w_max = np.nan_to_num(self.w_max)
            w_cons = np.nan_to_num(self.w_max_consume)
            self._caps_cache = (
                np.where(is_storage, w_max, 0.0),
                np.where(is_storage, -w_cons, 0.0),
                np.where(np.isin(self.kind, LOAD_CODES), -w_cons, 0.0),
                np.isin(self.kind, GENERATION_CODES).astype(np.float64),
            )
        return self._caps_cache

    def power_bounds(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Feasible net active power ``[p_lo, p_hi]`` [W] per DER from kind, ratings and SoC.

        Generation can curtail to 0 and cannot exceed what it produces now (no irradiance
        headroom is assumed); storage spans ``[-w_max_consume, w_max]`` narrowed at the SoC
        ends; loads can shed to 0 or draw up to ``w_max_consume``.
        """
        p = np.nan_to_num(self.p_w)
        storage_hi, storage_lo, load_lo, is_gen = self._rating_caps()
        soc = self.soc
        # NaN SoC (not reported) compares False on both sides: treated as mid-range.
        p_hi = np.where(soc <= SOC_MARGIN, 0.0, storage_hi)
        p_hi += np.maximum(p, 0.0) * is_gen
        p_lo = np.where(soc >= 1 - SOC_MARGIN, 0.0, storage_lo)
        p_lo += load_lo
        # A device already outside its nominal range (e.g. still discharging at the SoC floor)
        # is reported as it is, so flexibility never goes negative.
        return np.minimum(p_lo, p), np.maximum(p_hi, p)

    def flexibility(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Available upward (more injection / less load) and downward flexibility [W] per DER.

        Zero for DERs that are offline, unavailable or disabled.
        """
        p = np.nan_to_num(self.p_w)
        p_lo, p_hi = self.power_bounds()
        ok = self.dispatchable()
        return np.where(ok, p_hi - p, 0.0), np.where(ok, p - p_lo, 0.0)
