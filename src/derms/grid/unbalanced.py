"""Unbalanced (three-phase) power flow for networks whose loads and DERs sit on single phases.

power-grid-model's asymmetric calculation (``symmetric=False``) is the fast engine; pandapower's
``runpp_3ph`` (sequence-frame Newton-Raphson) is the reference.  Both need zero-sequence data
for lines, transformers and the external grid, which the shipped IEEE European LV feeder carries
(IEEE PES, "European Low Voltage Test Feeder", 2015).  Per-phase injections are (n_bus, 3)
arrays in W/var, phases A, B, C, positive into the grid; voltages are phase-to-neutral
magnitudes in pu of the nominal phase voltage.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from power_grid_model import ComponentType, LoadGenType, PowerGridModel, initialize_array
from power_grid_model.errors import PowerGridError

from derms.core.errors import ValidationFailed
from derms.grid.model import NetworkModel

PHASES = "ABC"
_W_PER_MW = 1e6
_IDEAL_SOURCE_SK_VA = 1e15


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """Per-phase bus voltages [pu], (n_bus, 3) or (steps, n_bus, 3); NaN where unenergised
    or the step failed."""

    bus_ids: pd.Index
    vm_pu: np.ndarray
    converged: np.ndarray


def phase_injections(
    model: NetworkModel, bus_ids: np.ndarray | list[str], phases: np.ndarray | list[str], values: np.ndarray
) -> np.ndarray:
    """Sum per-item values (W or var) onto (..., n_bus, 3), each item's value split equally
    over its phases ("A", "BC", "ABC", ...)."""
    values = np.asarray(values, dtype=float)
    pos = model.bus_positions(bus_ids)
    share = np.zeros((len(pos), 3))
    for k, ph in enumerate(phases):
        cols = [PHASES.index(c) for c in str(ph).upper() if c in PHASES]
        if not cols or len(set(cols)) != len(str(ph)):
            raise ValidationFailed([f"item {k}: phases {ph!r} must be letters out of 'ABC'"])
        share[k, cols] = 1.0 / len(cols)
    out = np.zeros((*values.shape[:-1], len(model.bus_ids), 3))
    np.add.at(out, (..., pos, slice(None)), values[..., None] * share)
    return out


class PgmAsymEngine:
    """power-grid-model asymmetric power flow for one network model.

    The network's loads (symmetric and per phase) are converted by power-grid-model-io's
    ``PandaPowerConverter``; one constant-power ``asym_gen`` per bus carries the extra
    per-phase injections.  Rebuilt when the model's topology changes.
    """

    def __init__(self, model: NetworkModel) -> None:
        if model.net is None:
            raise ValidationFailed(["power-grid-model needs a network built from pandapower"])
        self.model = model
        self._version = -1

    def _build(self) -> None:
        from power_grid_model_io.converters import PandaPowerConverter

        m = self.model
        conv = PandaPowerConverter()
        logging.getLogger("power_grid_model_io").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, _ = conv.load_input_data(m.net)
        data[ComponentType.source]["sk"] = _IDEAL_SOURCE_SK_VA
        self.node_id = conv.idx[("bus", None)].loc[m.net.bus.index].to_numpy()
        next_id = max(int(np.max(v["id"])) for v in data.values() if len(v)) + 1
        gen = initialize_array("input", ComponentType.asym_gen, len(self.node_id))
        gen["id"] = np.arange(next_id, next_id + len(self.node_id))
        gen["node"] = self.node_id
        gen["status"] = 1
        gen["type"] = LoadGenType.const_power
        gen["p_specified"] = 0.0
        gen["q_specified"] = 0.0
        self.inj_id = gen["id"].copy()
        data[ComponentType.asym_gen] = (
            np.concatenate([data[ComponentType.asym_gen], gen]) if ComponentType.asym_gen in data else gen
        )
        self.data = data
        self.pgm = PowerGridModel(data)
        self.node_pos = pd.Index(data[ComponentType.node]["id"]).get_indexer(self.node_id)
        self._version = m.topology_version

    def run(self, p_inj_w: np.ndarray | None = None, q_inj_var: np.ndarray | None = None) -> PhaseResult:
        """Snapshot with extra per-phase injections (n_bus, 3) [W], [var]."""
        res = self.run_batch(
            None if p_inj_w is None else np.asarray(p_inj_w, float)[None],
            None if q_inj_var is None else np.asarray(q_inj_var, float)[None],
        )
        return PhaseResult(res.bus_ids, res.vm_pu[0], res.converged[0])

    def run_batch(
        self, p_inj_w: np.ndarray | None = None, q_inj_var: np.ndarray | None = None
    ) -> PhaseResult:
        """Scenarios or time steps of per-phase injections (steps, n_bus, 3) in one batch."""
        if self._version != self.model.topology_version:
            self._build()
        n = len(self.node_id)
        given = [x for x in (p_inj_w, q_inj_var) if x is not None]
        steps = np.shape(given[0])[0] if given else 1
        arrays = []
        for x, what in ((p_inj_w, "p_inj_w"), (q_inj_var, "q_inj_var")):
            a = np.zeros((steps, n, 3)) if x is None else np.asarray(x, float)
            if a.shape != (steps, n, 3) or not np.isfinite(a).all():
                raise ValidationFailed([f"{what} must be finite with shape ({steps}, {n}, 3)"])
            arrays.append(a)
        update = {
            ComponentType.asym_gen: {
                "id": np.broadcast_to(self.inj_id, (steps, n)),
                "p_specified": arrays[0],
                "q_specified": arrays[1],
            }
        }
        converged = np.ones(steps, dtype=bool)
        try:
            out = self.pgm.calculate_power_flow(
                symmetric=False,
                update_data=update,
                output_component_types={ComponentType.node: ["u_pu", "energized"]},
                continue_on_batch_error=True,
            )
        except PowerGridError as e:
            raise ValidationFailed([str(e)]) from e
        failed = self.pgm.batch_error
        if failed is not None:
            converged[failed.failed_scenarios] = False
        node = out[ComponentType.node]
        vm = node["u_pu"][:, self.node_pos].copy()
        vm[node["energized"][:, self.node_pos] == 0] = np.nan
        vm[~converged] = np.nan
        return PhaseResult(self.model.bus_ids, vm, converged)


def run_pandapower_3ph(
    model: NetworkModel, p_inj_w: np.ndarray | None = None, q_inj_var: np.ndarray | None = None
) -> PhaseResult:
    """Reference: pandapower's ``runpp_3ph`` with the per-phase injections (n_bus, 3) added as
    asymmetric static generators to a copy of the network."""
    import pandapower as pp

    if model.net is None:
        raise ValidationFailed(["pandapower power flow needs a network built from pandapower"])
    net = copy.deepcopy(model.net)
    n = len(model.bus_ids)
    p = np.zeros((n, 3)) if p_inj_w is None else np.asarray(p_inj_w, float)
    q = np.zeros((n, 3)) if q_inj_var is None else np.asarray(q_inj_var, float)
    if p.shape != (n, 3) or q.shape != (n, 3):
        raise ValidationFailed([f"injections must have shape ({n}, 3)"])
    for i in np.flatnonzero((p != 0).any(axis=1) | (q != 0).any(axis=1)):
        pa, pb, pc = p[i] / _W_PER_MW
        qa, qb, qc = q[i] / _W_PER_MW
        pp.create_asymmetric_sgen(
            net, int(net.bus.index[i]), p_a_mw=pa, p_b_mw=pb, p_c_mw=pc, q_a_mvar=qa, q_b_mvar=qb, q_c_mvar=qc
        )
    converged = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pp.runpp_3ph(net, numba=False)
        except pp.LoadflowNotConverged:
            converged = False
    vm = np.full((n, 3), np.nan)
    if converged:
        vm = net.res_bus_3ph[["vm_a_pu", "vm_b_pu", "vm_c_pu"]].to_numpy(float).copy()
    return PhaseResult(model.bus_ids, vm, np.asarray(converged))
