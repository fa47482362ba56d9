"""The orchestrator's inputs from the running platform: the live ``FleetState`` on the grid model.

Only DERs whose state the platform knows take part: storage that reports its state of charge,
PV (curtailment), C&I load, and the energy-limited loads whose kind-specific state
(:mod:`derms.core.device_state`) was reported within :data:`STATE_MAX_AGE_S`:

* EV chargers with a session: energy still needed and a departure still ahead (OCPP 2.0.1
  NotifyEVChargingNeeds less the energy metered since; the simulator's sessions). Chargers
  without a known need (OCPP 1.6, no vehicle) are left out.
* Thermostats in cooling (outdoor above indoor temperature; the flexibility model is the
  cooling 1R1C model) with their indoor and outdoor temperature. R, C and COP are the
  registered ``Capabilities.r_k_per_w``/``c_j_per_k``/``cop``, else class-typical values
  (:data:`THERMOSTAT_R_K_PER_W`, :data:`THERMOSTAT_C_J_PER_K`, :data:`THERMOSTAT_COP`);
  comfort is ±1 K around the reported temperature (``Preferences`` default).
* Water heaters with their stored and maximum tank energy (CTA-2045 commodity read); the hot
  water draw is not reported, so none is assumed over the interval.

Baselines are the latest measurements, except for DERs under a command, whose baseline is
what they did before it (``baseline_w``), so a plan never counts its own response as the
baseline (an EV's baseline is charging at its rating until its need is met, set by the
flexibility model). A load's deviation is bounded by what its registered capabilities declare
(:func:`load_deviation_caps`). Over a horizon, PV's baseline follows the clear-sky index from its
site's location (:mod:`derms.orchestration.horizon_baselines`, :func:`der_locations`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sqlalchemy import Engine, select

from derms.core.controls import ControlKind
from derms.core.der import Capabilities, Der, DerKind
from derms.core.objectives import AreaLevel, Objective
from derms.fleet.state import KIND_CODES, STORAGE_CODES, FleetState
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
    DerKind.EV_CHARGER,
    DerKind.THERMOSTAT,
    DerKind.WATER_HEATER,
)
STATE_MAX_AGE_S = 900.0
"""Kind-specific state older than this (one planning interval) is not planned from [s]."""
THERMOSTAT_R_K_PER_W = 0.002
"""1R1C thermal resistance of a house [K/W]: 2 degC/kW (Callaway, "Tapping the energy storage
potential in electric loads...", Energy Conversion and Management 50(5), 2009, table 1)."""
THERMOSTAT_C_J_PER_K = 3.6e7
"""1R1C thermal capacitance [J/K]: 10 kWh/degC (Callaway 2009, table 1)."""
THERMOSTAT_COP = 2.5
"""Coefficient of performance of the air conditioner [-] (Callaway 2009, table 1)."""
_CODES = np.array([KIND_CODES[k] for k in PLANNED_KINDS], np.int8)
_STORAGE = np.array([KIND_CODES[k] for k in PLANNED_KINDS if k.is_storage], np.int8)
_LOADS = np.array([KIND_CODES[k] for k in PLANNED_KINDS if k.is_load], np.int8)
_STATE = ("kind", "feeder", "q_var", "w_max", "w_max_consume", "wh_max", "var_max_inject", "var_max_absorb")
_EV, _THERMOSTAT, _WATER_HEATER = (
    KIND_CODES[k] for k in (DerKind.EV_CHARGER, DerKind.THERMOSTAT, DerKind.WATER_HEATER)
)


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


def der_locations(engine: Engine, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude [degrees] of each fleet row's site; NaN when not registered."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(ders.c.idx, sites.c.latitude, sites.c.longitude).join(sites, sites.c.id == ders.c.site_id)
        ).all()
    lat, lon = np.full(n, np.nan), np.full(n, np.nan)
    for idx, la, lo in rows:
        if idx < n and la is not None and lo is not None:
            lat[idx], lon[idx] = la, lo
    return lat, lon


def baseline_p(state: FleetState, baseline_w: Mapping[str, float]) -> np.ndarray:
    """Baseline active power per fleet row [W]: latest measurement (0 when none), or the
    pre-command value of DERs under a command."""
    p = np.nan_to_num(state.p_w[: len(state)].copy())
    for der_id, w in baseline_w.items():
        row = state.index.get(der_id)
        if row is not None:
            p[row] = w
    return p


def planned_rows(state: FleetState, now_ms: float) -> np.ndarray:
    """Fleet rows that take part at ``now_ms``: registered, enabled, a planned kind; storage with
    a SoC; EVs, thermostats and water heaters with fresh kind-specific state (module docstring)."""
    kind = state.kind
    ok = state.registered & state.enabled & np.isin(kind, _CODES)
    ok &= ~np.isin(kind, _STORAGE) | (np.isfinite(state.soc) & (state.wh_max > 0))
    fresh = state.fresh_state(now_ms, STATE_MAX_AGE_S)
    ev = (state.ev_energy_needed_wh > 0) & (state.ev_departure_ms > now_ms)
    cooling = np.isfinite(state.temp_c) & (state.temp_out_c > state.temp_c)
    tank = np.isfinite(state.tank_wh) & (state.tank_max_wh > 0)
    ok &= (kind != _EV) | (fresh & ev)
    ok &= (kind != _THERMOSTAT) | (fresh & cooling)
    ok &= (kind != _WATER_HEATER) | (fresh & tank)
    return np.flatnonzero(ok)


def fleet_input(
    state: FleetState,
    rows: np.ndarray,
    bus: np.ndarray,
    base: np.ndarray,
    now_ms: float,
    base_steps: np.ndarray | None = None,
) -> FleetInput:
    """A :class:`FleetInput` of ``rows`` (see :func:`planned_rows`) at ``now_ms``; ``base_steps``
    (per fleet row and step, :mod:`derms.orchestration.horizon_baselines`) is the baseline of
    each step of a horizon, else ``base`` persists."""
    cols = {name: np.nan_to_num(np.asarray(getattr(state, name))[rows]) for name in _STATE}
    soc = np.clip(state.soc[rows], 0.0, 1.0)
    kind = state.kind[rows]
    thermostat = kind == _THERMOSTAT
    tank_max = state.tank_max_wh[rows]
    r_k_per_w = _declared(state.r_k_per_w[rows], thermostat, THERMOSTAT_R_K_PER_W, np.nan)
    cop = _declared(state.cop[rows], thermostat, THERMOSTAT_COP, 1.0)
    holding = thermostat_holding_w(
        state.temp_c[rows], state.temp_out_c[rows], r_k_per_w, cop, cols["w_max_consume"]
    )
    return FleetInput.build(
        [state.der_ids[i] for i in rows],
        **cols,
        bus=bus[rows],
        p_w=np.where(thermostat, -holding, base[rows]),
        p_w_steps=None if base_steps is None else np.where(thermostat[:, None], np.nan, base_steps[rows]),
        soc=soc,
        online=state.online[rows] & state.available[rows],
        available=state.available[rows],
        ramp_w_per_s=state.ramp_w_per_s[rows],
        ev_energy_needed_wh=state.ev_energy_needed_wh[rows],
        ev_departure_s=(state.ev_departure_ms[rows] - now_ms) / 1000.0,
        temp_c=state.temp_c[rows],
        temp_out_c=state.temp_out_c[rows],
        r_k_per_w=r_k_per_w,
        c_j_per_k=_declared(state.c_j_per_k[rows], thermostat, THERMOSTAT_C_J_PER_K, np.nan),
        cop=cop,
        tank_wh=np.minimum(state.tank_wh[rows], tank_max),
        tank_max_wh=tank_max,
    )


def thermostat_holding_w(
    temp_c: np.ndarray, temp_out_c: np.ndarray, r_k_per_w: np.ndarray, cop: np.ndarray, w_max: np.ndarray
) -> np.ndarray:
    """Electric power [W, >= 0] that holds a cooled zone at ``temp_c``: the steady state of the
    1R1C model, heat gain ``(T_out - T) / R`` removed at ``COP`` (Mathieu, Koch and Callaway,
    IEEE Trans. Power Systems 28(1), 2013), within the unit's rating. A thermostat cycling in its
    deadband draws this on average, where one measurement sees the compressor on or off.
    NaN inputs (not a thermostat) give 0."""
    gain_w = (temp_out_c - temp_c) / r_k_per_w
    return np.nan_to_num(np.clip(gain_w / cop, 0.0, w_max))


def _declared(values: np.ndarray, rows: np.ndarray, default: float, other: float) -> np.ndarray:
    """A registered thermal parameter on ``rows`` (``default`` where not declared), ``other``
    elsewhere."""
    return np.where(rows, np.where(np.isnan(values), default, values), other)


def load_deviation_caps(fleet: FleetInput, ders: Mapping[str, Der], steps: int = 1) -> np.ndarray:
    """Largest deviation (up, down) of each row from its baseline in each step [W], shape
    ``(2, n, steps)``.

    A load sheds at most its declared ``Capabilities.sheddable_fraction`` of its baseline
    consumption, and draws no more than its baseline unless it declares ``LOAD_UP``. For a load
    with an energy state (EV, thermostat, water heater) that holds only for the first step, the
    one dispatched: later, drawing more than the baseline is its own rebound after a shed (an EV
    catching up by its departure, a thermostat recovering its band), which its energy model
    bounds. Other kinds are not limited here (their ratings bound them in the flexibility model).
    """
    caps = np.full((2, fleet.n, steps), np.inf)
    for i in np.flatnonzero(np.isin(fleet.kind, _LOADS)):
        der = ders.get(fleet.der_ids[i])
        if der is None:
            continue
        consumption = max(-float(fleet.p_w[i]), 0.0)
        caps[0, i] = der.capabilities.sheddable_fraction * consumption
        if not der.capabilities.supports(ControlKind.LOAD_UP):
            rebounds = fleet.kind[i] in (_EV, _THERMOSTAT, _WATER_HEATER)
            caps[1, i, : 1 if rebounds else steps] = 0.0
    return caps


def one_way_efficiency(caps: Capabilities) -> float:
    """Charging and discharging efficiency alike: the square root of the registered round trip
    (losses split evenly, as the simulator's battery model does)."""
    return float(np.sqrt(caps.round_trip_efficiency))


def storage_terms(fleet: FleetInput, ders: Mapping[str, Der]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, from the registered capabilities of storage DERs (other kinds: 1 and 0): the
    one-way efficiency (:func:`one_way_efficiency`) and the state-of-charge reserve dispatch may not use
    (``Capabilities.soc_reserve``, SunSpec ``MinRsvPct``)."""
    eta, reserve = np.ones(fleet.n), np.zeros(fleet.n)
    for i in np.flatnonzero(np.isin(fleet.kind, STORAGE_CODES)):
        der = ders.get(fleet.der_ids[i])
        if der is not None:
            eta[i] = one_way_efficiency(der.capabilities)
            reserve[i] = der.capabilities.soc_reserve
    return eta, reserve


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
    """Net import of the objective's area at the baseline ``base`` (per fleet row) [W]: see
    :func:`area_import_steps_w`."""
    return float(area_import_steps_w(objective, state, where, model, base[:, None])[0])


def area_import_steps_w(
    objective: Objective, state: FleetState, where: Areas, model: NetworkModel, base_steps: np.ndarray
) -> np.ndarray:
    """Net import of the objective's area in each step [W] at the baselines ``base_steps``
    ``(fleet rows, steps)``: the network's own loads less its generators on the area's buses
    (persistence: the grid model's present values), less the online DERs' baseline injections
    there in that step. For an explicit DER group or a tenant's objective: the members' own net
    import. Losses are neglected.
    """
    members = area_rows(objective, state, where)
    ders_w = base_steps[members & state.online].sum(axis=0)
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
