"""Unbalanced (three-phase) power flow for networks whose loads and DERs sit on single phases.

power-grid-model's asymmetric calculation (``symmetric=False``) is the fast engine; pandapower's
``runpp_3ph`` (sequence-frame Newton-Raphson) is the reference.  Both need zero-sequence data
for lines, transformers and the external grid, which the shipped IEEE European LV feeder carries
(IEEE PES, "European Low Voltage Test Feeder", 2015).  Per-phase injections are (n_bus, 3)
arrays in W/var, phases A, B, C, positive into the grid; voltages are phase-to-neutral
magnitudes in pu of the nominal phase voltage; branch currents are phase-conductor magnitudes
(the neutral current is not reported).
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from power_grid_model import CalculationMethod, ComponentType, LoadGenType, PowerGridModel, initialize_array
from power_grid_model.errors import PowerGridError

from derms.core.errors import ValidationFailed
from derms.grid.model import NetworkModel

PHASES = "ABC"
_W_PER_MW = 1e6
_A_PER_KA = 1e3
_IDEAL_SOURCE_SK_VA = 1e15


@dataclass(frozen=True, slots=True)
class PhaseResult:
    """Per-phase power flow results; the last axis is the phase (A, B, C) and batch runs have a
    leading time axis.  NaN where a bus is unenergised or a step failed.

    ``branch_ids`` lists lines, cables and transformers (not bus-bus switches), in the order of
    :class:`~derms.grid.powerflow.PowerFlowResult`.  ``substation_p_w`` is the active power each
    phase delivers to the substation's source bus (transformer LV terminal, or the external grid
    where there is no transformer); negative under reverse flow on that phase.  Per phase at the
    LV terminal because a delta-wye transformer mixes the phases on its HV side, so only the
    LV side shows which phase exports.
    """

    bus_ids: pd.Index
    branch_ids: pd.Index
    substation_ids: pd.Index
    vm_pu: np.ndarray
    """Phase-to-neutral voltage magnitude [pu], (..., n_bus, 3)."""
    i_from_a: np.ndarray
    """Phase current at the from (HV) end [A], (..., n_branch, 3)."""
    i_to_a: np.ndarray
    """Phase current at the to (LV) end [A], (..., n_branch, 3)."""
    loading_pct: np.ndarray
    """Per-phase loading [%], (..., n_branch, 3): the larger end's current against the thermal
    current (lines) or the rated current of either winding (transformers, as pandapower)."""
    p_from_w: np.ndarray
    """Active power entering each branch at its from end, per phase [W], (..., n_branch, 3)."""
    losses_w: np.ndarray
    """Total active losses in lines and transformers, all phases [W], (...)."""
    substation_p_w: np.ndarray
    """Per-phase power into each substation's source bus [W], (..., n_substation, 3)."""
    converged: np.ndarray
    """Whether each step (a 0-d array for a snapshot) converged."""

    @property
    def reverse_flow(self) -> np.ndarray:
        """True where a phase of a substation exports towards the upstream grid."""
        return self.substation_p_w < 0


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


def _load_scale(scale: np.ndarray | float | None, steps: int, n: int) -> np.ndarray | None:
    """Load scaling as (steps, n_load): a scalar, a (steps,) profile or a (steps, n_load) matrix."""
    if scale is None:
        return None
    s = np.asarray(scale, dtype=float)
    if not np.isfinite(s).all():
        raise ValidationFailed(["load_scale contains non-finite values"])
    if s.ndim == 1 and s.shape[0] == steps:
        s = s[:, None]
    try:
        return np.broadcast_to(s, (steps, n))
    except ValueError as e:
        raise ValidationFailed(
            [f"load_scale of shape {s.shape} does not fit {steps} steps x {n} loads"]
        ) from e


class PgmAsymEngine:
    """power-grid-model asymmetric power flow for one network model.

    The network's loads (symmetric and per phase) are converted by power-grid-model-io's
    ``PandaPowerConverter``; one constant-power ``asym_gen`` per bus carries the extra
    per-phase injections.  Rebuilt when the model's topology changes.  Batches are solved in
    chunks of ``chunk_steps`` scenarios to bound the output's memory.
    """

    def __init__(self, model: NetworkModel, *, chunk_steps: int = 256) -> None:
        if model.net is None:
            raise ValidationFailed(["power-grid-model needs a network built from pandapower"])
        self.model = model
        self.chunk_steps = chunk_steps
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
        self._map_loads(conv)
        self._map_branches(conv)
        self._version = m.topology_version

    def _map_loads(self, conv: Any) -> None:
        """Converted load components and their row in ``model.loads`` (``load:<i>`` rows first,
        then ``asymmetric_load:<i>``), with base P/Q to scale."""
        net = self.model.net
        self.loads: dict[ComponentType, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        for comp, table, offset in (
            (ComponentType.sym_load, "load", 0),
            (ComponentType.asym_load, "asymmetric_load", len(net.load)),
        ):
            series = [s for key, s in conv.idx.items() if str(key[0]) == table]
            if comp not in self.data or not series:
                continue
            ids = np.concatenate([s.to_numpy() for s in series])
            rows = np.concatenate([getattr(net, table).index.get_indexer(s.index) for s in series]) + offset
            arr = self.data[comp]
            pos = pd.Index(arr["id"]).get_indexer(ids)
            self.loads[comp] = (ids, rows, arr["p_specified"][pos].copy(), arr["q_specified"][pos].copy())

    def _map_branches(self, conv: Any) -> None:
        m = self.model
        br = m.branches[m.branches["kind"] != "switch"]
        self.branch_ids = br.index
        self.branch_is_trafo = (br["kind"] == "trafo").to_numpy()
        self.branch_pgm_id = np.empty(len(br), dtype=np.int64)
        for table, mask in (("line", ~self.branch_is_trafo), ("trafo", self.branch_is_trafo)):
            if mask.any():
                rows = br.index[mask].str.split(":").str[1].astype(int)
                self.branch_pgm_id[mask] = conv.idx[(table, None)].loc[rows].to_numpy()
        # per-phase rated current [A] at each end
        self.i_rated = np.empty((len(br), 2))
        if (~self.branch_is_trafo).any():
            ln = self.data[ComponentType.line]
            ln = ln[pd.Index(ln["id"]).get_indexer(self.branch_pgm_id[~self.branch_is_trafo])]
            self.i_rated[~self.branch_is_trafo] = ln["i_n"][:, None]
        if self.branch_is_trafo.any():
            tr = self.data[ComponentType.transformer]
            tr = tr[pd.Index(tr["id"]).get_indexer(self.branch_pgm_id[self.branch_is_trafo])]
            self.i_rated[self.branch_is_trafo] = np.c_[
                tr["sn"] / (np.sqrt(3) * tr["u1"]), tr["sn"] / (np.sqrt(3) * tr["u2"])
            ]
        subs = m.substations
        self.sub_trafo_pos = np.array(
            [self.branch_ids.get_loc(t) if t else -1 for t in subs["trafo"]], dtype=np.int64
        )
        eg = m.net.ext_grid
        src_map = conv.idx[("ext_grid", None)]
        self.sub_source_id = np.array(
            [
                src_map.loc[eg.index[eg["bus"] == int(b)][0]] if not t else -1
                for t, b in zip(subs["trafo"], subs["upstream_bus"], strict=True)
            ],
            dtype=np.int64,
        )

    def run(
        self,
        p_inj_w: np.ndarray | None = None,
        q_inj_var: np.ndarray | None = None,
        *,
        load_scale: np.ndarray | float | None = None,
    ) -> PhaseResult:
        """Snapshot with extra per-phase injections (n_bus, 3) [W], [var]; ``load_scale`` a
        scalar or (n_load,) multiplier of the network's loads (``model.loads`` order)."""
        res = self.run_batch(
            None if p_inj_w is None else np.asarray(p_inj_w, float)[None],
            None if q_inj_var is None else np.asarray(q_inj_var, float)[None],
            load_scale=None if load_scale is None else np.atleast_1d(np.asarray(load_scale, float))[None],
            steps=1,
        )
        return PhaseResult(
            res.bus_ids,
            res.branch_ids,
            res.substation_ids,
            *(getattr(res, f)[0] for f in _FIELDS),
        )

    def run_batch(
        self,
        p_inj_w: np.ndarray | None = None,
        q_inj_var: np.ndarray | None = None,
        *,
        load_scale: np.ndarray | float | None = None,
        steps: int | None = None,
        method: CalculationMethod = CalculationMethod.newton_raphson,
    ) -> PhaseResult:
        """Time steps or scenarios in one batch: injections (steps, n_bus, 3); ``load_scale``
        a scalar, a (steps,) profile or a (steps, n_load) matrix over ``model.loads``.  Steps
        that do not converge come back with ``converged`` False and NaN values.
        ``method=CalculationMethod.iterative_current`` factorises the admittance matrix once
        per batch: about twice as fast on long series of one topology, same fixed point."""
        if self._version != self.model.topology_version:
            self._build()
        n = len(self.node_id)
        if steps is None:
            given = [x for x in (p_inj_w, q_inj_var, load_scale) if x is not None and np.ndim(x) >= 1]
            steps = int(np.shape(given[0])[0]) if given else 1
        arrays = []
        for x, what in ((p_inj_w, "p_inj_w"), (q_inj_var, "q_inj_var")):
            a = np.zeros((steps, n, 3)) if x is None else np.asarray(x, float)
            if a.shape != (steps, n, 3) or not np.isfinite(a).all():
                raise ValidationFailed([f"{what} must be finite with shape ({steps}, {n}, 3)"])
            arrays.append(a)
        scale = _load_scale(load_scale, steps, len(self.model.loads))
        parts = []
        for a in range(0, steps, self.chunk_steps):
            b = min(a + self.chunk_steps, steps)
            parts.append(
                self._solve(arrays[0][a:b], arrays[1][a:b], None if scale is None else scale[a:b], method)
            )
        return PhaseResult(
            self.model.bus_ids,
            self.branch_ids,
            self.model.substations.index,
            *(np.concatenate([r[f] for r in parts]) for f in _FIELDS),
        )

    def _update(
        self, p: np.ndarray, q: np.ndarray, scale: np.ndarray | None
    ) -> dict[ComponentType, dict[str, np.ndarray]]:
        """Batch update with only what changes: buses with an injection somewhere in the batch,
        and the loads when scaled."""
        steps = p.shape[0]
        cols = np.flatnonzero((p != 0).any(axis=(0, 2)) | (q != 0).any(axis=(0, 2)))
        if not len(cols):  # nothing injected: carry the batch size with one zero injection
            cols = np.arange(1)
        upd = {
            ComponentType.asym_gen: {
                "id": np.broadcast_to(self.inj_id[cols], (steps, len(cols))),
                "p_specified": p[:, cols],
                "q_specified": q[:, cols],
            }
        }
        if scale is not None:
            for comp, (ids, rows, p0, q0) in self.loads.items():
                s = scale[:, rows].reshape(steps, len(rows), *([1] * (p0.ndim - 1)))
                upd[comp] = {
                    "id": np.broadcast_to(ids, (steps, len(ids))),
                    "p_specified": s * p0,
                    "q_specified": s * q0,
                }
        return upd

    def _solve(
        self, p: np.ndarray, q: np.ndarray, scale: np.ndarray | None, method: CalculationMethod
    ) -> dict[str, np.ndarray]:
        steps = p.shape[0]
        branch_out = ["i_from", "i_to", "p_from", "p_to"]
        outputs = {
            ComponentType.node: ["u_pu", "energized"],
            ComponentType.line: branch_out,
            ComponentType.transformer: branch_out,
            ComponentType.source: ["p"],
        }
        outputs = {k: v for k, v in outputs.items() if k in self.data and len(self.data[k])}
        converged = np.ones(steps, dtype=bool)
        try:
            out = self.pgm.calculate_power_flow(
                symmetric=False,
                update_data=self._update(p, q, scale),
                output_component_types=outputs,
                calculation_method=method,
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
        nb = len(self.branch_ids)
        r = {k: np.full((steps, nb, 3), np.nan) for k in ("i_from_a", "i_to_a", "p_from_w")}
        losses = np.zeros(steps)
        p_to = np.full((steps, nb, 3), np.nan)
        for comp, mask in (
            (ComponentType.line, ~self.branch_is_trafo),
            (ComponentType.transformer, self.branch_is_trafo),
        ):
            if comp not in out:
                continue
            o = out[comp]
            pos = pd.Index(self.data[comp]["id"]).get_indexer(self.branch_pgm_id[mask])
            r["i_from_a"][:, mask] = o["i_from"][:, pos]
            r["i_to_a"][:, mask] = o["i_to"][:, pos]
            r["p_from_w"][:, mask] = o["p_from"][:, pos]
            p_to[:, mask] = o["p_to"][:, pos]
            losses += (o["p_from"] + o["p_to"]).sum(axis=(1, 2))
        loading = np.maximum(r["i_from_a"] / self.i_rated[:, :1], r["i_to_a"] / self.i_rated[:, 1:]) * 100.0
        sub_p = np.full((steps, len(self.sub_trafo_pos), 3), np.nan)
        has_trafo = self.sub_trafo_pos >= 0
        sub_p[:, has_trafo] = -p_to[:, self.sub_trafo_pos[has_trafo]]
        if (~has_trafo).any():
            src = self.data[ComponentType.source]["id"]
            sub_p[:, ~has_trafo] = out[ComponentType.source]["p"][
                :, pd.Index(src).get_indexer(self.sub_source_id[~has_trafo])
            ]
        res = {"vm_pu": vm, **r, "loading_pct": loading, "losses_w": losses, "substation_p_w": sub_p}
        for arr in res.values():
            arr[~converged] = np.nan
        res["converged"] = converged
        return res


_FIELDS = (
    "vm_pu",
    "i_from_a",
    "i_to_a",
    "loading_pct",
    "p_from_w",
    "losses_w",
    "substation_p_w",
    "converged",
)


def run_pandapower_3ph(
    model: NetworkModel,
    p_inj_w: np.ndarray | None = None,
    q_inj_var: np.ndarray | None = None,
    *,
    load_scale: np.ndarray | float | None = None,
) -> PhaseResult:
    """Reference: pandapower's ``runpp_3ph`` with the per-phase injections (n_bus, 3) added as
    asymmetric static generators to a copy of the network, loads scaled by ``load_scale``
    (scalar or (n_load,) over ``model.loads``)."""
    import pandapower as pp

    if model.net is None:
        raise ValidationFailed(["pandapower power flow needs a network built from pandapower"])
    net = copy.deepcopy(model.net)
    n = len(model.bus_ids)
    p = np.zeros((n, 3)) if p_inj_w is None else np.asarray(p_inj_w, float)
    q = np.zeros((n, 3)) if q_inj_var is None else np.asarray(q_inj_var, float)
    if p.shape != (n, 3) or q.shape != (n, 3):
        raise ValidationFailed([f"injections must have shape ({n}, 3)"])
    scale = _load_scale(load_scale, 1, len(model.loads))
    if scale is not None:
        k = len(net.load)
        net.load["scaling"] = net.load["scaling"].to_numpy() * scale[0, :k]
        net.asymmetric_load["scaling"] = net.asymmetric_load["scaling"].to_numpy() * scale[0, k:]
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
    br = model.branches[model.branches["kind"] != "switch"]
    is_trafo = (br["kind"] == "trafo").to_numpy()
    rows = br.index.str.split(":").str[1].astype(int)
    nb = len(br)
    out = {k: np.full((nb, 3), np.nan) for k in ("i_from_a", "i_to_a", "loading_pct", "p_from_w")}
    vm = np.full((n, 3), np.nan)
    sub_p = np.full((len(model.substations), 3), np.nan)
    losses = np.nan
    if converged:
        vm = net.res_bus_3ph[[f"vm_{x}_pu" for x in "abc"]].to_numpy(float).copy()
        for mask, res, ends in (
            (~is_trafo, net.res_line_3ph.loc[rows[~is_trafo]], ("from", "to")),
            (is_trafo, net.res_trafo_3ph.loc[rows[is_trafo]], ("hv", "lv")),
        ):
            out["i_from_a"][mask] = res[[f"i_{x}_{ends[0]}_ka" for x in "abc"]].to_numpy() * _A_PER_KA
            out["i_to_a"][mask] = res[[f"i_{x}_{ends[1]}_ka" for x in "abc"]].to_numpy() * _A_PER_KA
            out["loading_pct"][mask] = res[[f"loading_{x}_percent" for x in "abc"]].to_numpy()
            out["p_from_w"][mask] = res[[f"p_{x}_{ends[0]}_mw" for x in "abc"]].to_numpy() * _W_PER_MW
        pl = [f"pl_{x}_mw" for x in "abc"]
        losses = (net.res_line_3ph[pl].to_numpy().sum() + net.res_trafo_3ph[pl].to_numpy().sum()) * _W_PER_MW
        for k, (trafo, bus) in enumerate(
            zip(model.substations["trafo"], model.substations["upstream_bus"], strict=True)
        ):
            if trafo:
                row = net.res_trafo_3ph.loc[int(trafo.split(":")[1])]
                sub_p[k] = -row[[f"p_{x}_lv_mw" for x in "abc"]].to_numpy(float) * _W_PER_MW
            else:
                eg = net.ext_grid.index[net.ext_grid["bus"] == int(bus)]
                sub_p[k] = (
                    net.res_ext_grid_3ph.loc[eg, [f"p_{x}_mw" for x in "abc"]].to_numpy(float).sum(axis=0)
                    * _W_PER_MW
                )
    return PhaseResult(
        model.bus_ids,
        br.index,
        model.substations.index,
        vm,
        out["i_from_a"],
        out["i_to_a"],
        out["loading_pct"],
        out["p_from_w"],
        np.asarray(losses),
        sub_p,
        np.asarray(converged),
    )
