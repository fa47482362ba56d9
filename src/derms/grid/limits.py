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

import numpy as np
import pandas as pd

from derms.grid.model import NetworkModel
from derms.grid.powerflow import PowerFlowResult


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
    steps = result.vm_pu.shape[0] if batch else 1
    label = np.asarray(list(times), dtype=object) if times is not None else np.arange(steps)
    if len(label) != steps:
        raise ValueError(f"{len(label)} time labels for {steps} steps")
    lo, hi = limits.bus_bounds(model)
    up, down, th, rf = (np.atleast_2d(a) for a in margins(result, model, limits))
    vm = np.atleast_2d(result.vm_pu)
    frames = []
    for kind, margin, ids, value, limit in (
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
            np.full(rf.shape, limits.min_substation_p_w if limits.min_substation_p_w is not None else np.nan),
        ),
    ):
        t, e = np.nonzero(margin < 0)
        frames.append(
            pd.DataFrame(
                {
                    "time": label[t],
                    "kind": kind.value,
                    "element": np.asarray(ids, dtype=object)[e],
                    "value": value[t, e],
                    "limit": limit[t, e],
                    "magnitude": -margin[t, e],
                }
            )
        )
    bad = np.flatnonzero(~np.atleast_1d(result.converged))
    frames.append(
        pd.DataFrame(
            {
                "time": label[bad],
                "kind": ViolationKind.NOT_CONVERGED.value,
                "element": model.name,
                "value": np.nan,
                "limit": np.nan,
                "magnitude": np.nan,
            }
        )
    )
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in VIOLATION_COLUMNS})
    return pd.concat(frames, ignore_index=True).sort_values(["time", "kind", "element"], ignore_index=True)
