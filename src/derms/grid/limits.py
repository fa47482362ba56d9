"""Operating limits and the constraint check: voltage (ANSI C84.1), thermal, reverse flow.

ANSI C84.1-2020, Table 1 (service voltage, as a fraction of nominal):

==================  ==============  ==============
nominal voltage      Range A         Range B
==================  ==============  ==============
120-600 V            0.950 - 1.050   0.917 - 1.058
above 600 V          0.975 - 1.050   0.950 - 1.058
==================  ==============  ==============

Range A is the normal design range; Range B is acceptable for limited periods and calls for
corrective action.  Both are configurable; buses above 1 kV use the medium-voltage band.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from derms.grid.model import NetworkModel
from derms.grid.powerflow import PowerFlowResult
from derms.grid.unbalanced import PHASES, PhaseResult


@dataclass(frozen=True, slots=True)
class VoltageBand:
    """Allowed bus voltage magnitude [pu]."""

    lower_pu: float
    upper_pu: float

    def __post_init__(self) -> None:
        if not 0 < self.lower_pu < self.upper_pu:
            raise ValueError("voltage band needs 0 < lower_pu < upper_pu")


class AnsiRange(StrEnum):
    A = "A"
    B = "B"


ANSI_C84_1: dict[tuple[AnsiRange, str], VoltageBand] = {
    (AnsiRange.A, "lv"): VoltageBand(0.95, 1.05),
    (AnsiRange.B, "lv"): VoltageBand(0.917, 1.058),
    (AnsiRange.A, "mv"): VoltageBand(0.975, 1.05),
    (AnsiRange.B, "mv"): VoltageBand(0.95, 1.058),
}


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits a network must stay within.

    ``max_loading_pct`` applies to lines, cables and transformers.  ``min_substation_p_w``
    bounds the power each substation draws from upstream; ``0.0`` forbids reverse flow,
    ``None`` leaves it unchecked.
    """

    lv: VoltageBand
    mv: VoltageBand
    max_loading_pct: float = 100.0
    min_substation_p_w: float | None = None
    lv_mv_boundary_kv: float = 1.0

    @classmethod
    def ansi(
        cls,
        range_: AnsiRange | str = AnsiRange.A,
        *,
        max_loading_pct: float = 100.0,
        reverse_flow: bool = True,
    ) -> Limits:
        """ANSI C84.1 Range A or B voltages; ``reverse_flow=False`` forbids export upstream."""
        r = AnsiRange(range_)
        return cls(
            lv=ANSI_C84_1[(r, "lv")],
            mv=ANSI_C84_1[(r, "mv")],
            max_loading_pct=max_loading_pct,
            min_substation_p_w=None if reverse_flow else 0.0,
        )

    def bus_bounds(self, model: NetworkModel) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) voltage bounds [pu] per bus, in ``model.bus_ids`` order."""
        lv = model.buses["vn_kv"].to_numpy() <= self.lv_mv_boundary_kv
        return np.where(lv, self.lv.lower_pu, self.mv.lower_pu), np.where(
            lv, self.lv.upper_pu, self.mv.upper_pu
        )


class ViolationKind(StrEnum):
    OVERVOLTAGE = "overvoltage"
    UNDERVOLTAGE = "undervoltage"
    THERMAL = "thermal"
    REVERSE_FLOW = "reverse_flow"
    NOT_CONVERGED = "not_converged"


VIOLATION_COLUMNS = ("time", "kind", "element", "value", "limit", "magnitude")
"""Columns of a violation report.  ``value`` and ``limit`` are in pu (voltage), % (thermal)
or W (reverse flow); ``magnitude`` is how far beyond the limit, in the same unit."""


def margins(
    result: PowerFlowResult, model: NetworkModel, limits: Limits
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Headroom arrays (positive = within limits): upper voltage, lower voltage [pu],
    thermal [%], substation import above ``min_substation_p_w`` [W] (+inf when unchecked)."""
    lo, hi = limits.bus_bounds(model)
    v = result.vm_pu
    up = np.where(np.isnan(v), np.inf, hi - v)
    down = np.where(np.isnan(v), np.inf, v - lo)
    th = np.where(np.isnan(result.loading_pct), np.inf, limits.max_loading_pct - result.loading_pct)
    if limits.min_substation_p_w is None:
        rf = np.full(result.substation_p_w.shape, np.inf)
    else:
        rf = np.where(
            np.isnan(result.substation_p_w), np.inf, result.substation_p_w - limits.min_substation_p_w
        )
    return up, down, th, rf


def check(
    result: PowerFlowResult,
    model: NetworkModel,
    limits: Limits,
    times: Sequence[datetime] | pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """Every limit violation in a snapshot or batch result, one row each (see ``VIOLATION_COLUMNS``).

    ``times`` labels the steps of a batch (default: the step number).
    """
    batch = result.vm_pu.ndim == 2
    label = _labels(times, result.vm_pu.shape[0] if batch else 1)
    lo, hi = limits.bus_bounds(model)
    up, down, th, rf = (np.atleast_2d(a) for a in margins(result, model, limits))
    vm = np.atleast_2d(result.vm_pu)
    rf_limit = limits.min_substation_p_w if limits.min_substation_p_w is not None else np.nan
    specs = [
        (ViolationKind.OVERVOLTAGE, up, result.bus_ids, vm, np.broadcast_to(hi, vm.shape)),
        (ViolationKind.UNDERVOLTAGE, down, result.bus_ids, vm, np.broadcast_to(lo, vm.shape)),
        (
            ViolationKind.THERMAL,
            th,
            result.branch_ids,
            np.atleast_2d(result.loading_pct),
            np.full(th.shape, limits.max_loading_pct),
        ),
        (
            ViolationKind.REVERSE_FLOW,
            rf,
            result.substation_ids,
            np.atleast_2d(result.substation_p_w),
            np.full(rf.shape, rf_limit),
        ),
    ]
    return _report(specs, label, np.atleast_1d(result.converged), model.name, None)


PHASE_VIOLATION_COLUMNS = (*VIOLATION_COLUMNS, "phase")
"""Columns of a per-phase violation report; ``phase`` is "A", "B" or "C" ("" for not_converged)."""


def check_phases(
    result: PhaseResult,
    model: NetworkModel,
    limits: Limits,
    times: Sequence[datetime] | pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """Every violation in an unbalanced (per-phase) result, one row per element, phase and step
    (see ``PHASE_VIOLATION_COLUMNS``).

    Phase-to-neutral voltages against the ANSI C84.1 bands, each phase's loading against
    ``max_loading_pct``, and each phase a substation delivers against a third of
    ``min_substation_p_w`` (``0.0`` forbids export on any phase).
    """
    batch = result.vm_pu.ndim == 3
    label = _labels(times, result.vm_pu.shape[0] if batch else 1)
    lo, hi = (np.repeat(b, 3) for b in limits.bus_bounds(model))

    def flat(a: np.ndarray) -> np.ndarray:
        """(steps, n, 3) or (n, 3) -> (steps, 3 n), element-major."""
        a = a if batch else a[None]
        return a.reshape(a.shape[0], -1)

    def margin(x: np.ndarray) -> np.ndarray:
        return np.where(np.isnan(x), np.inf, x)

    vm, loading, sub = flat(result.vm_pu), flat(result.loading_pct), flat(result.substation_p_w)
    sub_min = np.nan if limits.min_substation_p_w is None else limits.min_substation_p_w / 3
    bus, branch, station = (
        np.repeat(np.asarray(i, dtype=object), 3)
        for i in (result.bus_ids, result.branch_ids, result.substation_ids)
    )
    specs = [
        (ViolationKind.OVERVOLTAGE, margin(hi - vm), bus, vm, np.broadcast_to(hi, vm.shape)),
        (ViolationKind.UNDERVOLTAGE, margin(vm - lo), bus, vm, np.broadcast_to(lo, vm.shape)),
        (
            ViolationKind.THERMAL,
            margin(limits.max_loading_pct - loading),
            branch,
            loading,
            np.full(loading.shape, limits.max_loading_pct),
        ),
        (ViolationKind.REVERSE_FLOW, margin(sub - sub_min), station, sub, np.full(sub.shape, sub_min)),
    ]
    return _report(specs, label, np.atleast_1d(result.converged), model.name, np.asarray(list(PHASES)))


def _labels(times: Sequence[datetime] | pd.DatetimeIndex | None, steps: int) -> np.ndarray:
    label = np.asarray(list(times), dtype=object) if times is not None else np.arange(steps)
    if len(label) != steps:
        raise ValueError(f"{len(label)} time labels for {steps} steps")
    return label


def _report(
    specs: list[tuple[ViolationKind, np.ndarray, Any, np.ndarray, np.ndarray]],
    label: np.ndarray,
    converged: np.ndarray,
    name: str,
    phases: np.ndarray | None,
) -> pd.DataFrame:
    """Rows where a margin (steps, k) is negative; with ``phases``, column j is phase j % 3."""
    columns = VIOLATION_COLUMNS if phases is None else PHASE_VIOLATION_COLUMNS
    frames = []
    for kind, margin, ids, value, limit in specs:
        t, e = np.nonzero(margin < 0)
        rows = {
            "time": label[t],
            "kind": kind.value,
            "element": np.asarray(ids, dtype=object)[e],
            "value": value[t, e],
            "limit": limit[t, e],
            "magnitude": -margin[t, e],
        }
        if phases is not None:
            rows["phase"] = phases[e % 3]
        frames.append(pd.DataFrame(rows))
    bad = np.flatnonzero(~converged)
    frames.append(
        pd.DataFrame(
            {
                "time": label[bad],
                "kind": ViolationKind.NOT_CONVERGED.value,
                "element": name,
                "value": np.nan,
                "limit": np.nan,
                "magnitude": np.nan,
            }
            | ({} if phases is None else {"phase": ""})
        )
    )
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    order = ["time", "kind", "element"] + ([] if phases is None else ["phase"])
    return pd.concat(frames, ignore_index=True).sort_values(order, ignore_index=True)
