"""Dynamic operating envelopes (DOEs): per-site import and export limits for each interval.

For each interval the envelope is the largest allocation under a fairness rule such that the
feeder stays within its limits when *every* site uses its whole envelope at once (the
worst case of Petrou et al., "Ensuring distribution network integrity using dynamic operating
limits for prosumers", IEEE Trans. Smart Grid 12(5), 2021; the fairness rules follow
Liu, Ochoa et al., "On the fairness of PV curtailment schemes in residential distribution
networks", IEEE Trans. Smart Grid 11(5), 2020):

* ``equal``: every site of a substation gets the same limit, capped at its own capacity;
* ``proportional``: every site gets the same fraction of its capacity.

The level is shared by all feeders of one substation (they interact through its busbar
voltage, transformer and reverse flow) and found by batched bisection over all intervals
and substations at once (substations are independent, each fed from the upstream grid), then
every interval is verified by a Newton-Raphson AC power flow with all sites at their
envelopes.  Where inputs are missing,
the power flow fails or verification fails, the site gets the policy's fallback limits
(CSIP-AUS calls these default DER controls).

The result is plain data: one row per site and interval with ``import_w`` and ``export_w``
(both non-negative magnitudes [W]); the IEEE 2030.5 adapter serves them as CSIP-AUS
``opModImpLimW``/``opModExpLimW``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import numpy as np
import pandas as pd
from power_grid_model import CalculationMethod

from derms.core.errors import ValidationFailed
from derms.grid.limits import Limits, margins
from derms.grid.powerflow import PgmEngine, PowerFlowResult

DOE_COLUMNS = ("site_id", "start", "end", "import_w", "export_w", "feeder_id", "verified", "fallback")


class Fairness(StrEnum):
    EQUAL = "equal"
    PROPORTIONAL = "proportional"


@dataclass(frozen=True, slots=True)
class DoePolicy:
    """How envelopes are shared and what applies when they cannot be computed.

    ``resolution_w`` is the bisection tolerance on a site's limit.  The fallback defaults are
    1.5 kW export (the fixed export limit several Australian networks apply to sites without a
    dynamic connection) and 0 W import unless configured.
    """

    fairness: Fairness = Fairness.EQUAL
    fallback_export_w: float = 1500.0
    fallback_import_w: float = 0.0
    resolution_w: float = 100.0
    export: bool = True
    import_: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "fairness", Fairness(self.fairness))
        if self.resolution_w <= 0 or self.fallback_export_w < 0 or self.fallback_import_w < 0:
            raise ValueError("resolution must be positive and fallbacks non-negative")


def _group_margin(
    res: PowerFlowResult,
    floor: tuple[np.ndarray, ...],
    bus_group: np.ndarray,
    branch_group: np.ndarray,
    n_groups: int,
    model_margins: tuple[np.ndarray, ...],
) -> np.ndarray:
    """Worst headroom per (step, substation) after allowing each limit its base violation."""
    steps = res.vm_pu.shape[0]
    out = np.full((steps, n_groups), np.inf)
    owners = (bus_group, bus_group, branch_group, np.arange(n_groups))
    for m, f, owner in zip(model_margins, floor, owners, strict=True):
        excess = m - np.minimum(f, 0.0)
        for k in range(n_groups):
            cols = owner == k
            if cols.any():
                out[:, k] = np.minimum(out[:, k], excess[:, cols].min(axis=1))
    out[~res.converged] = -np.inf
    return out


def operating_envelopes(
    engine: PgmEngine,
    limits: Limits,
    sites: pd.DataFrame,
    starts: pd.DatetimeIndex,
    interval: timedelta,
    *,
    load_scale: np.ndarray | None = None,
    sgen_scale: np.ndarray | None = None,
    policy: DoePolicy | None = None,
) -> pd.DataFrame:
    """Envelopes for every site and interval (columns ``DOE_COLUMNS``).

    ``sites`` is indexed by site id with columns ``bus``, ``export_capacity_w`` and
    ``import_capacity_w`` (inverter or contract ratings [W]).  ``load_scale``/``sgen_scale``
    are (n_interval,) forecasts of the network's own loads and generators; a NaN marks a
    missing forecast, and that interval falls back.
    """
    policy = policy or DoePolicy()
    model = engine.model
    errors = [
        f"sites lacks column {c!r}"
        for c in ("bus", "export_capacity_w", "import_capacity_w")
        if c not in sites
    ]
    if starts.tz is None:
        errors.append("interval starts must be timezone-aware")
    if errors:
        raise ValidationFailed(errors)
    if (sites[["export_capacity_w", "import_capacity_w"]] < 0).any().any():
        raise ValidationFailed(["site capacities must be non-negative"])
    nt = len(starts)
    ls = np.ones(nt) if load_scale is None else np.asarray(load_scale, float)
    ss = None if sgen_scale is None else np.asarray(sgen_scale, float)
    if ls.shape != (nt,) or (ss is not None and ss.shape != (nt,)):
        raise ValidationFailed([f"forecasts must have one value per interval ({nt})"])
    missing = np.isnan(ls) | (np.isnan(ss) if ss is not None else False)
    ls_ok = np.where(missing, 1.0, ls)
    ss_ok = None if ss is None else np.where(missing, 0.0, ss)

    site_pos = model.bus_positions(sites["bus"].to_numpy())
    site_feeder = model.buses["feeder_index"].to_numpy()[site_pos]
    # levels are per substation: -1 for buses no substation energises
    ng = len(model.substations)
    bus_group = model.substations.index.get_indexer(model.buses["substation_id"])
    site_group = bus_group[site_pos]
    br = model.branches.loc[engine.run().branch_ids]
    branch_group = np.maximum(
        bus_group[model.bus_positions(br["from_bus"])], bus_group[model.bus_positions(br["to_bus"])]
    )
    incidence = model.incidence(sites["bus"].to_numpy())

    base = engine.run_batch(np.zeros((nt, len(model.bus_ids))), load_scale=ls_ok, sgen_scale=ss_ok)
    floor = tuple(np.atleast_2d(m) for m in margins(base, model, limits))

    def evaluate(levels: np.ndarray, cap: np.ndarray, sign: float, method: CalculationMethod) -> np.ndarray:
        per_site = _allocate(levels[:, site_group], cap, policy.fairness)
        p = sign * (per_site @ incidence)
        res = engine.run_batch(p, load_scale=ls_ok, sgen_scale=ss_ok, method=method)
        return _group_margin(res, floor, bus_group, branch_group, ng, margins(res, model, limits))

    out = {}
    for name, enabled, cap_col, sign, fallback in (
        ("export_w", policy.export, "export_capacity_w", 1.0, policy.fallback_export_w),
        ("import_w", policy.import_, "import_capacity_w", -1.0, policy.fallback_import_w),
    ):
        cap = sites[cap_col].to_numpy(float)
        if not enabled:
            out[name] = (np.broadcast_to(np.minimum(cap, fallback), (nt, len(cap))), np.ones((nt, ng), bool))
            continue
        top = np.zeros(ng)
        for k in range(ng):
            in_f = site_group == k
            if in_f.any():
                top[k] = 1.0 if policy.fairness is Fairness.PROPORTIONAL else cap[in_f].max()
        levels = _bisect_levels(evaluate, cap, sign, top, nt, policy)
        check = evaluate(levels, cap, sign, CalculationMethod.newton_raphson) >= -1e-9
        out[name] = (_allocate(levels[:, site_group], cap, policy.fairness), check)

    exp, exp_ok = out["export_w"]
    imp, imp_ok = out["import_w"]
    verified = exp_ok[:, site_group] & imp_ok[:, site_group] & ~missing[:, None] & (site_group >= 0)
    fallback = ~verified
    exp = np.where(fallback, np.minimum(sites["export_capacity_w"].to_numpy(), policy.fallback_export_w), exp)
    imp = np.where(fallback, np.minimum(sites["import_capacity_w"].to_numpy(), policy.fallback_import_w), imp)
    feeder_ids = np.array([*model.feeder_ids, ""], dtype=object)[site_feeder]
    ns = len(sites)
    return pd.DataFrame(
        {
            "site_id": np.tile(sites.index.to_numpy(dtype=object), nt),
            "start": np.repeat(starts, ns),
            "end": np.repeat(starts + interval, ns),
            "import_w": imp.ravel(),
            "export_w": exp.ravel(),
            "feeder_id": np.tile(feeder_ids, nt),
            "verified": verified.ravel(),
            "fallback": fallback.ravel(),
        }
    )


def _allocate(level: np.ndarray, cap: np.ndarray, fairness: Fairness) -> np.ndarray:
    """Per-site limit [W] for a feeder level (W for equal, fraction for proportional)."""
    if fairness is Fairness.PROPORTIONAL:
        return level * cap
    return np.minimum(level, cap)


Evaluate = Callable[[np.ndarray, np.ndarray, float, CalculationMethod], np.ndarray]


def _bisect_levels(
    evaluate: Evaluate, cap: np.ndarray, sign: float, top: np.ndarray, nt: int, policy: DoePolicy
) -> np.ndarray:
    """Largest feasible level per (interval, feeder), to ``policy.resolution_w`` per site."""
    lo = np.zeros((nt, len(top)))
    hi = np.broadcast_to(top, (nt, len(top))).copy()
    ok = evaluate(hi, cap, sign, CalculationMethod.iterative_current) >= -1e-9
    lo[ok] = hi[ok]
    scale = max(float(cap.max()), 1.0) if policy.fairness is Fairness.PROPORTIONAL else 1.0
    while True:
        open_ = (hi - lo) * scale > policy.resolution_w
        if not open_.any():
            return lo
        mid = np.where(open_, (lo + hi) / 2, lo)
        ok = evaluate(mid, cap, sign, CalculationMethod.iterative_current) >= -1e-9
        lo = np.where(open_ & ok, mid, lo)
        hi = np.where(open_ & ~ok, mid, hi)
