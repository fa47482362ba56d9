"""State estimation from telemetry: what the operator sees now.

Weighted-least-squares state estimation (Schweppe & Wildes, "Power system static-state
estimation", IEEE Trans. PAS-89(1), 1970) by power-grid-model's iterative-linear method.
Measurements:

* metered buses: net injection P, Q at the bus [W, var] with the meter's standard deviation;
* unmetered buses with load: pseudo-measurements from the network's loads and generators at
  the given scaling, with a large standard deviation (``pseudo_sigma_rel`` of the value);
* buses without load or generation: zero injection, weighted like a meter;
* voltage magnitudes where measured, and at every external-grid bus its set point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from power_grid_model import (
    CalculationMethod,
    ComponentType,
    MeasuredTerminalType,
    PowerGridModel,
    initialize_array,
)
from power_grid_model.errors import PowerGridError

from derms.core.errors import ValidationFailed
from derms.grid.powerflow import PgmEngine


@dataclass(frozen=True, slots=True)
class StateEstimate:
    """Estimated state, per bus in ``bus_ids`` order and per branch in ``branch_ids`` order."""

    bus_ids: pd.Index
    branch_ids: pd.Index
    vm_pu: np.ndarray
    p_w: np.ndarray
    """Estimated net injection per bus [W] (positive into the grid)."""
    q_var: np.ndarray
    loading_pct: np.ndarray
    metered: np.ndarray
    """Which buses had a real (not pseudo) power measurement."""


def estimate_state(
    engine: PgmEngine,
    *,
    p_w: pd.Series,
    q_var: pd.Series,
    voltage_pu: pd.Series | None = None,
    meter_sigma_w: float = 1e3,
    voltage_sigma_pu: float = 0.003,
    pseudo_sigma_rel: float = 0.5,
    pseudo_sigma_min_w: float = 1e3,
    load_scale: float = 1.0,
    sgen_scale: float = 1.0,
) -> StateEstimate:
    """Estimate bus voltages, injections and branch loading from the meters that exist.

    ``p_w``/``q_var`` are measured net injections indexed by bus id (metered buses only);
    ``voltage_pu`` measured voltage magnitudes indexed by bus id.
    """
    engine.run()  # builds the converted network for the current topology
    model = engine.model
    n = len(model.bus_ids)
    metered_pos = model.bus_positions(p_w.index.to_numpy())
    if not p_w.index.equals(q_var.index):
        raise ValidationFailed(["p_w and q_var must be indexed by the same buses"])
    if not (np.isfinite(p_w.to_numpy()).all() and np.isfinite(q_var.to_numpy()).all()):
        raise ValidationFailed(["measurements must be finite"])
    # pseudo injections from the network's own loads and generators
    pseudo_p = np.zeros(n)
    pseudo_q = np.zeros(n)
    for table, sign, scale in ((model.loads, -1.0, load_scale), (model.sgens, 1.0, sgen_scale)):
        if len(table):
            pos = model.bus_positions(table["bus"].to_numpy())
            np.add.at(pseudo_p, pos, sign * scale * table["p_w"].to_numpy())
            np.add.at(pseudo_q, pos, sign * scale * table["q_var"].to_numpy())
    carries = model.buses["has_load"].to_numpy() | np.isin(
        np.arange(n), model.bus_positions(model.sgens["bus"])
    )
    p_meas, q_meas = pseudo_p.copy(), pseudo_q.copy()
    sigma = np.where(
        carries,
        np.maximum(pseudo_sigma_rel * np.hypot(pseudo_p, pseudo_q), pseudo_sigma_min_w),
        meter_sigma_w,
    )
    metered = np.zeros(n, dtype=bool)
    metered[metered_pos] = True
    p_meas[metered_pos] = p_w.to_numpy(float)
    q_meas[metered_pos] = q_var.to_numpy(float)
    sigma[metered_pos] = meter_sigma_w
    source_bus = model.bus_positions(model.ext_grid_buses)
    measured = np.ones(n, dtype=bool)
    measured[source_bus] = False  # the upstream grid's injection is what we solve for

    # each bus's net injection is carried by its own injection generator, which the sensor
    # measures; the network's loads and generators are switched off so they are not counted twice
    data = {k: v.copy() for k, v in engine.data.items()}
    for comp in (ComponentType.sym_load, ComponentType.sym_gen):
        if comp in data:
            data[comp]["status"] = 0
    gen = data[ComponentType.sym_gen]
    gen["status"][np.isin(gen["id"], engine.inj_id)] = 1
    next_id = max(int(np.max(v["id"])) for v in data.values() if len(v)) + 1
    ps = initialize_array("input", ComponentType.sym_power_sensor, int(measured.sum()))
    ps["id"] = np.arange(next_id, next_id + len(ps))
    ps["measured_object"] = engine.inj_id[measured]
    ps["measured_terminal_type"] = MeasuredTerminalType.generator
    ps["power_sigma"] = sigma[measured]
    ps["p_measured"] = p_meas[measured]
    ps["q_measured"] = q_meas[measured]
    v = {} if voltage_pu is None else voltage_pu.to_dict()
    vm_set = model.net.ext_grid.set_index(model.net.ext_grid["bus"].astype(str))["vm_pu"]
    for bus in model.ext_grid_buses:
        v.setdefault(bus, float(vm_set.loc[bus]))
    vpos = model.bus_positions(list(v))
    vs = initialize_array("input", ComponentType.sym_voltage_sensor, len(v))
    vs["id"] = np.arange(next_id + len(ps), next_id + len(ps) + len(v))
    vs["measured_object"] = engine.node_id[vpos]
    vs["u_sigma"] = voltage_sigma_pu * model.buses["vn_kv"].to_numpy()[vpos] * 1e3
    vs["u_measured"] = np.array(list(v.values()), float) * model.buses["vn_kv"].to_numpy()[vpos] * 1e3
    data[ComponentType.sym_power_sensor] = ps
    data[ComponentType.sym_voltage_sensor] = vs
    try:
        out = PowerGridModel(data).calculate_state_estimation(
            calculation_method=CalculationMethod.iterative_linear,
            output_component_types={
                ComponentType.node: ["u_pu", "p", "q", "energized"],
                ComponentType.line: ["loading"],
            },
        )
    except PowerGridError as e:
        raise ValidationFailed([f"state estimation failed: {e}"]) from e
    node_pos = pd.Index(data[ComponentType.node]["id"]).get_indexer(engine.node_id)
    node = out[ComponentType.node]
    vm = np.where(node["energized"][node_pos] == 1, node["u_pu"][node_pos], np.nan)
    loading = np.full(len(engine.branch_ids), np.nan)
    line_pos = pd.Index(data[ComponentType.line]["id"]).get_indexer(engine.line_id)
    loading[~engine.branch_is_trafo] = out[ComponentType.line]["loading"][line_pos] * 100.0
    return StateEstimate(
        bus_ids=model.bus_ids,
        branch_ids=engine.branch_ids,
        vm_pu=vm,
        p_w=node["p"][node_pos],
        q_var=node["q"][node_pos],
        loading_pct=loading,
        metered=metered,
    )
