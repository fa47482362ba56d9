"""Grid constraints as linear sensitivities around the operating point.

A row is a monitored quantity (a branch's loading in percent, a bus voltage in per unit)
whose change is linear in the active and reactive injections at each bus::

    limit_lo - value0 <= sp @ dP_bus + sq @ dQ_bus <= limit_hi - value0

This is the first-order (Jacobian) model of the AC power flow used in linearised OPF
(e.g. Bolognani and Dörfler, "Fast power system analysis via implicit linearization of the
power flow manifold", Allerton 2015). Rows belong to one feeder each, so the constraint
matrix is block diagonal by feeder. Rows whose worst-case change cannot reach a limit are
screened out before solving (constraint screening: they can never bind).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True, slots=True, eq=False)
class GridConstraints:
    """Linear grid rows over bus injections (buses are positions ``0..n_bus-1``)."""

    sp: sp.csr_matrix
    """d(quantity)/dP per bus, shape ``(rows, n_bus)`` [unit/W]."""
    sq: sp.csr_matrix | None
    """d(quantity)/dQ per bus [unit/var], or None when reactive power is not modelled."""
    value0: np.ndarray
    limit_lo: np.ndarray
    limit_hi: np.ndarray
    labels: tuple[str, ...]
    """E.g. ``"line:12 thermal"``, ``"bus:34 v_max"`` (used as the setpoint's binding reason)."""
    is_voltage: np.ndarray

    def __post_init__(self) -> None:
        r = self.sp.shape[0]
        arrays = (self.value0, self.limit_lo, self.limit_hi, self.is_voltage)
        if any(a.shape != (r,) for a in arrays) or len(self.labels) != r:
            raise ValueError("grid constraint arrays must have one entry per row")
        if self.sq is not None and self.sq.shape != self.sp.shape:
            raise ValueError("sq must have the shape of sp")
        if np.any(self.limit_lo > self.limit_hi):
            raise ValueError("limit_lo must be <= limit_hi")

    @property
    def rows(self) -> int:
        return int(self.sp.shape[0])

    @property
    def n_bus(self) -> int:
        return int(self.sp.shape[1])

    @property
    def room_lo(self) -> np.ndarray:
        return self.limit_lo - self.value0

    @property
    def room_hi(self) -> np.ndarray:
        return self.limit_hi - self.value0

    def with_voltage_band(
        self, v_min: float, v_max: float, rows: np.ndarray | None = None
    ) -> GridConstraints:
        """Voltage rows (all, or ``rows``) limited to ``[v_min, v_max]`` per unit."""
        mask = (
            self.is_voltage.copy() if rows is None else np.isin(np.arange(self.rows), rows) & self.is_voltage
        )
        return replace(
            self,
            limit_lo=np.where(mask, v_min, self.limit_lo),
            limit_hi=np.where(mask, v_max, self.limit_hi),
        )

    def tightened(self, rows: np.ndarray, lo_by: np.ndarray, hi_by: np.ndarray) -> GridConstraints:
        """Limits of ``rows`` moved inwards by ``lo_by``/``hi_by`` (the re-solve after an AC check)."""
        lo, hi = self.limit_lo.copy(), self.limit_hi.copy()
        lo[rows] += lo_by
        hi[rows] -= hi_by
        return replace(self, limit_lo=lo, limit_hi=np.maximum(hi, lo))


def split_signs(a: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(max(a, 0), max(-a, 0))``, computed once and reused by :func:`screen`."""
    return a.maximum(0).tocsr(), (-a).maximum(0).tocsr()


def screen(
    p_parts: tuple[sp.csr_matrix, sp.csr_matrix],
    up: np.ndarray,
    down: np.ndarray,
    room_lo: np.ndarray,
    room_hi: np.ndarray,
    q_parts: tuple[sp.csr_matrix, sp.csr_matrix] | None = None,
    q_up: np.ndarray | None = None,
    q_down: np.ndarray | None = None,
) -> np.ndarray:
    """Rows whose worst-case change over the box ``u in [0, up]``, ``v in [0, down]`` (and the
    reactive box) can leave ``[room_lo, room_hi]``; the others cannot bind and may be dropped.
    ``p_parts``/``q_parts`` are the :func:`split_signs` of the sensitivity matrices."""
    pos, neg = p_parts
    hi = pos @ up + neg @ down
    lo = -(pos @ down + neg @ up)
    if q_parts is not None and q_up is not None and q_down is not None:
        qpos, qneg = q_parts
        hi = hi + qpos @ q_up + qneg @ q_down
        lo = lo - (qpos @ q_down + qneg @ q_up)
    return np.flatnonzero((hi > room_hi + 1e-9) | (lo < room_lo - 1e-9))
