"""The orchestrator's inputs from the running platform: the live ``FleetState`` on the grid model.

Only DERs whose state the platform measures take part: storage that reports its state of
charge, PV (curtailment) and C&I load. EV sessions (energy needed, departure) and the thermal
state of thermostats and water heaters are not in the fleet state, so those devices are left
out rather than modelled from guesses. Baselines are the latest measurements, except for
DERs under a command, whose baseline is what they did before it (``baseline_w``), so a plan
never counts its own response as the baseline. A load's deviation is bounded by what its
registered capabilities declare (:func:`load_deviation_caps`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sqlalchemy import Engine, select

from derms.core.controls import ControlKind
from derms.core.der import Der, DerKind
from derms.core.objectives import AreaLevel, Objective
from derms.fleet.state import KIND_CODES, FleetState
from derms.grid.model import NetworkModel
from derms.orchestration.inputs import FleetInput
from derms.orchestration.objectives import Areas
from derms.store.schema import ders, sites

PLANNED_KINDS = (
    DerKind.HOME_BATTERY,
    DerKind.UTILITY_BATTERY,
    DerKind.PV_INVERTER,
    DerKind.UTILITY_PV,
    DerKind.CI_LOAD,
)
_CODES = np.array([KIND_CODES[k] for k in PLANNED_KINDS], np.int8)
_STORAGE = np.array([KIND_CODES[k] for k in PLANNED_KINDS if k.is_storage], np.int8)
_LOADS = np.array([KIND_CODES[k] for k in PLANNED_KINDS if k.is_load], np.int8)
_STATE = ("kind", "feeder", "q_var", "w_max", "w_max_consume", "wh_max", "var_max_inject", "var_max_absorb")


def der_bus_positions(engine: Engine, model: NetworkModel, n: int) -> np.ndarray:
    """Grid-model bus position of each fleet row (through its site's bus); −1 when unknown."""
    with engine.connect() as conn:
        rows = conn.execute(select(ders.c.idx, sites.c.bus).join(sites, sites.c.id == ders.c.site_id)).all()
    pos = np.full(n, -1, np.int64)
    placed = [(idx, str(bus)) for idx, bus in rows if bus is not None and idx < n]
    if placed:
        idxs, buses = zip(*placed, strict=True)
        pos[list(idxs)] = model.bus_ids.get_indexer(list(buses))
    return pos


def baseline_p(state: FleetState, baseline_w: Mapping[str, float]) -> np.ndarray:
    """Baseline active power per fleet row [W]: latest measurement (0 when none), or the
    pre-command value of DERs under a command."""
    p = np.nan_to_num(state.p_w[: len(state)].copy())
    for der_id, w in baseline_w.items():
        row = state.index.get(der_id)
        if row is not None:
            p[row] = w
    return p


def planned_rows(state: FleetState) -> np.ndarray:
    """Fleet rows that take part: registered, enabled, a planned kind, storage with a SoC."""
    kind = state.kind
    storage = np.isin(kind, _STORAGE)
    ok = state.registered & state.enabled & np.isin(kind, _CODES)
    ok &= ~storage | (np.isfinite(state.soc) & (state.wh_max > 0))
    return np.flatnonzero(ok)


def fleet_input(state: FleetState, rows: np.ndarray, bus: np.ndarray, base: np.ndarray) -> FleetInput:
    """A :class:`FleetInput` of ``rows`` (see :func:`planned_rows`)."""
    cols = {name: np.nan_to_num(np.asarray(getattr(state, name))[rows]) for name in _STATE}
    soc = np.clip(state.soc[rows], 0.0, 1.0)
    return FleetInput.build(
        [state.der_ids[i] for i in rows],
        **cols,
        bus=bus[rows],
        p_w=base[rows],
        soc=soc,
        online=state.online[rows] & state.available[rows],
        available=state.available[rows],
        ramp_w_per_s=state.ramp_w_per_s[rows],
    )


def load_deviation_caps(fleet: FleetInput, ders: Mapping[str, Der]) -> np.ndarray:
    """Largest deviation (up, down) of each row from its baseline [W], shape ``(2, n)``.

    A load sheds at most its declared ``Capabilities.sheddable_fraction`` of its baseline
    consumption, and draws no more than its baseline unless it declares ``LOAD_UP``; other
    kinds are not limited here (their ratings bound them in the flexibility model).
    """
    caps = np.full((2, fleet.n), np.inf)
    for i in np.flatnonzero(np.isin(fleet.kind, _LOADS)):
        der = ders.get(fleet.der_ids[i])
        if der is None:
            continue
        consumption = max(-float(fleet.p_w[i]), 0.0)
        caps[0, i] = der.capabilities.sheddable_fraction * consumption
        if not der.capabilities.supports(ControlKind.LOAD_UP):
            caps[1, i] = 0.0
    return caps


def areas(state: FleetState, model: NetworkModel) -> Areas:
    """Feeder ids in the fleet state's feeder-index order, with their substations."""
    subs = model.feeders["substation_id"].to_dict()
    return Areas(tuple(state.feeder_ids), {f: str(subs[f]) for f in state.feeder_ids if f in subs})


def area_rows(objective: Objective, state: FleetState, where: Areas) -> np.ndarray:
    """Boolean mask of the fleet rows (every kind) inside the objective's area, and of its
    tenant when the objective names one."""
    level, ids = objective.area.level, set(objective.area.ids)
    if level is AreaLevel.SYSTEM:
        rows = state.registered.copy()
    elif level is AreaLevel.GROUP:
        rows = state.registered & np.isin(np.array(state.der_ids, dtype=object), list(ids))
    else:
        rows = state.registered & np.isin(state.feeder, where.feeder_indices(level, ids))
    if objective.tenant_id is not None:
        rows &= state.tenant == _tenant_position(state, objective.tenant_id)
    return rows


def area_import_w(
    objective: Objective, state: FleetState, where: Areas, model: NetworkModel, base: np.ndarray
) -> float:
    """Net import of the objective's area at the baseline [W]: the network's own loads less its
    generators on the area's buses, less the online DERs' baseline injections there. For an
    explicit DER group or a tenant's objective: the members' own net import. Losses are
    neglected.
    """
    members = area_rows(objective, state, where)
    ders_w = float(base[members & state.online].sum())
    level, ids = objective.area.level, set(objective.area.ids)
    if level is AreaLevel.GROUP or objective.tenant_id is not None:
        return -ders_w
    buses = model.buses
    if level is AreaLevel.SYSTEM:
        on = buses["feeder_id"].astype(bool)
    elif level is AreaLevel.FEEDER:
        on = buses["feeder_id"].isin(ids)
    else:
        on = buses["substation_id"].isin(ids)
    area_buses = set(buses.index[on.to_numpy(bool)])
    load = float(model.loads.loc[model.loads["bus"].isin(area_buses), "p_w"].sum())
    gen = (
        float(model.sgens.loc[model.sgens["bus"].isin(area_buses), "p_w"].sum()) if len(model.sgens) else 0.0
    )
    return load - gen - ders_w


def _tenant_position(state: FleetState, tenant_id: str) -> int:
    return state.tenant_ids.index(tenant_id) if tenant_id in state.tenant_ids else -2
