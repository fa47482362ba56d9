"""AC power flow: power-grid-model (fast, batched) and pandapower (reference).

Extra injections are given per bus, aligned with ``model.bus_ids``, in W and var with the
derms sign convention (positive = injection into the grid).  The base loads and static
generators of the network stay in place and can be scaled per time step.

Both engines solve the balanced (positive-sequence) Newton-Raphson power flow; the
power-grid-model input is converted from the pandapower network by power-grid-model-io's
``PandaPowerConverter``, so both see the same element data.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from power_grid_model import (
    CalculationMethod,
    ComponentType,
    LoadGenType,
    PowerGridModel,
    initialize_array,
)
from power_grid_model.errors import PowerGridBatchError

from derms.core.errors import ValidationFailed
from derms.grid.model import NetworkModel

_W_PER_MW = 1e6
_IDEAL_SOURCE_SK_VA = 1e15


@dataclass(frozen=True, slots=True)
class PowerFlowResult:
    """Power flow results; arrays have a leading time axis for batch runs.

    ``branch_ids`` lists lines, cables and transformers (not bus-bus switches).
    ``substation_p_w`` is the active power flowing from the upstream grid into each substation
    (transformer HV side, or the external grid where there is no transformer); it is negative
    under reverse flow.
    """

    bus_ids: pd.Index
    branch_ids: pd.Index
    substation_ids: pd.Index
    vm_pu: np.ndarray
    """Bus voltage magnitude [pu]; NaN for unenergised buses or failed steps."""
    loading_pct: np.ndarray
    """Branch loading [%] of thermal current (lines) or rated apparent power (transformers)."""
    p_from_w: np.ndarray
    """Active power entering each branch at its from (HV) end [W]."""
    losses_w: np.ndarray
    """Total active losses in lines and transformers [W]."""
    substation_p_w: np.ndarray
    converged: np.ndarray
    """Whether each step (a 0-d array for a snapshot) converged."""

    @property
    def reverse_flow(self) -> np.ndarray:
        """True where a substation exports to the upstream grid."""
        return self.substation_p_w < 0


def _as_2d(x: np.ndarray | None, n: int, steps: int | None, what: str) -> np.ndarray | None:
    if x is None:
        return None
    x = np.asarray(x, dtype=float)
    if x.shape[-1] != n:
        raise ValidationFailed([f"{what} has {x.shape[-1]} columns, the network has {n} buses"])
    if not np.isfinite(x).all():
        raise ValidationFailed([f"{what} contains non-finite values"])
    return x.reshape(-1, n) if steps is None else np.broadcast_to(x, (steps, n))


def _scale(scale: np.ndarray | float | None, steps: int, n: int, what: str) -> np.ndarray:
    """Scaling as (steps, n): a scalar, a (steps,) profile or a (steps, n) matrix."""
    if scale is None:
        return np.ones((steps, n))
    s = np.asarray(scale, dtype=float)
    if s.ndim == 1 and s.shape[0] == steps:
        s = s[:, None]
    try:
        return np.broadcast_to(s, (steps, n))
    except ValueError as e:
        raise ValidationFailed([f"{what} of shape {s.shape} does not fit {steps} steps x {n}"]) from e


class PgmEngine:
    """power-grid-model power flow for one network model.

    The converted input is cached and rebuilt when the model's topology changes.  One
    constant-power ``sym_gen`` per bus carries the extra injections.
    """

    def __init__(self, model: NetworkModel, *, chunk_steps: int = 2048) -> None:
        if model.net is None:
            raise ValidationFailed(["power-grid-model needs a network built from pandapower"])
        self.model = model
        self.chunk_steps = chunk_steps
        self._version = -1
        self._islands: tuple[int, list[tuple[PgmEngine, np.ndarray]]] = (-1, [])

    def _build(self) -> None:
        from power_grid_model_io.converters import PandaPowerConverter

        m = self.model
        conv = PandaPowerConverter()
        logging.getLogger("power_grid_model_io").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, _ = conv.load_input_data(m.net)
        # pandapower's power flow treats an external grid as an ideal source; do the same
        data[ComponentType.source]["sk"] = _IDEAL_SOURCE_SK_VA
        bus_map = conv.idx[("bus", None)]
        self.node_id = bus_map.loc[m.net.bus.index].to_numpy()
        next_id = max(int(np.max(v["id"])) for v in data.values() if len(v)) + 1
        gen = initialize_array("input", ComponentType.sym_gen, len(self.node_id))
        gen["id"] = np.arange(next_id, next_id + len(self.node_id))
        gen["node"] = self.node_id
        gen["status"] = 1
        gen["type"] = LoadGenType.const_power
        gen["p_specified"] = 0.0
        gen["q_specified"] = 0.0
        self.inj_id = gen["id"].copy()
        data[ComponentType.sym_gen] = (
            np.concatenate([data[ComponentType.sym_gen], gen]) if ComponentType.sym_gen in data else gen
        )
        # base loads (3 constant P/Z/I parts per pandapower load) and sgens, by pandapower row
        load_ids, load_row = [], []
        for key, series in conv.idx.items():
            if str(key[0]) == "load":
                load_ids.append(series.to_numpy())
                load_row.append(m.net.load.index.get_indexer(series.index))
        self.load_id = np.concatenate(load_ids) if load_ids else np.zeros(0, int)
        self.load_row = np.concatenate(load_row) if load_row else np.zeros(0, int)
        sl = data.get(ComponentType.sym_load)
        if sl is not None and len(self.load_id):
            # the converter makes a constant P, I and Z part of every load; parts that are zero
            # stay zero under scaling and only cost time in every batch scenario
            zero = (sl["p_specified"] == 0) & (sl["q_specified"] == 0)
            data[ComponentType.sym_load] = sl = sl[~zero]
            keep = np.isin(self.load_id, sl["id"])
            self.load_id, self.load_row = self.load_id[keep], self.load_row[keep]
            pos = pd.Index(sl["id"]).get_indexer(self.load_id)
            self.load_p = sl["p_specified"][pos].copy()
            self.load_q = sl["q_specified"][pos].copy()
        self.data = data
        self.pgm = PowerGridModel(data)
        sg_map = conv.idx.get(("sgen", None))
        self.sgen_id = sg_map.to_numpy() if sg_map is not None else np.zeros(0, int)
        if len(self.sgen_id):
            sg = data[ComponentType.sym_gen]
            pos = pd.Index(sg["id"]).get_indexer(self.sgen_id)
            self.sgen_p = sg["p_specified"][pos].copy()
            self.sgen_q = sg["q_specified"][pos].copy()
        br = m.branches[m.branches["kind"] != "switch"]
        self.branch_ids = br.index
        self.branch_pgm_id = np.empty(len(br), dtype=np.int64)
        self.branch_is_trafo = (br["kind"] == "trafo").to_numpy()
        for table, mask in (("line", ~self.branch_is_trafo), ("trafo", self.branch_is_trafo)):
            if mask.any():
                rows = br.index[mask].str.split(":").str[1].astype(int)
                self.branch_pgm_id[mask] = conv.idx[(table, None)].loc[rows].to_numpy()
        self.line_id = self.branch_pgm_id[~self.branch_is_trafo]
        self.trafo_id = self.branch_pgm_id[self.branch_is_trafo]
        if len(self.trafo_id):
            tr = data[ComponentType.transformer]
            tr = tr[pd.Index(tr["id"]).get_indexer(self.trafo_id)]
            self.trafo_i_scale = (np.sqrt(3) * tr["u1"] / tr["sn"], np.sqrt(3) * tr["u2"] / tr["sn"])
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
        self._version = m.topology_version

    def islands(self) -> list[tuple[PgmEngine, np.ndarray]]:
        """Engines for the parts of the network that only external grids join, with the
        positions of their buses in this model (cached per topology).  A part's engine also
        holds the far buses of open branches that leave it, unenergised there.

        The external grids are ideal sources, so an injection in one part changes nothing in
        another: scenario batches can be solved on the smaller parts.  One part: ``[]``.
        """
        if self._islands[0] == self.model.topology_version:
            return self._islands[1]
        import pandapower as pp
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        from derms.grid.network import from_pandapower

        m = self.model
        n = len(m.bus_ids)
        br = m.branches[m.branches["in_service"] & m.branches["closed"]]
        a, b = m.bus_positions(br["from_bus"]), m.bus_positions(br["to_bus"])
        all_a, all_b = m.bus_positions(m.branches["from_bus"]), m.bus_positions(m.branches["to_bus"])
        ext = np.zeros(n, dtype=bool)
        ext[m.bus_positions(m.ext_grid_buses)] = True
        inner = ~ext[a] & ~ext[b]
        g = coo_matrix((np.ones(inner.sum()), (a[inner], b[inner])), shape=(n, n))
        _, comp = connected_components(g, directed=False)
        comp[ext] = -1
        fed = np.unique(comp[m.buses["feeder_index"].to_numpy() >= 0])
        fed = fed[fed >= 0]  # an external-grid bus at distribution voltage is in every part
        out: list[tuple[PgmEngine, np.ndarray]] = []
        if len(fed) > 1:
            for c in fed:
                # with the far ends of every branch that touches the part, in any state: an
                # open line still loads its energised end with its capacitance
                members = comp == c
                near = members[all_a] | members[all_b]
                keep = np.unique(np.r_[np.flatnonzero(members), all_a[near], all_b[near]])
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sub = pp.select_subnet(m.net, m.net.bus.index[keep])
                part = from_pandapower(sub, name=f"{m.name}:{c}")
                out.append((PgmEngine(part, chunk_steps=self.chunk_steps), m.bus_positions(part.bus_ids)))
        self._islands = (m.topology_version, out)
        return out

    def _ensure(self) -> None:
        if self._version != self.model.topology_version:
            self._build()

    def _update(
        self,
        p_bus: np.ndarray | None,
        q_bus: np.ndarray | None,
        load_scale: np.ndarray | float | None,
        sgen_scale: np.ndarray | float | None,
        steps: int,
    ) -> dict[ComponentType, dict[str, np.ndarray]]:
        """Columnar batch update holding only what changes: buses with an injection somewhere
        in the batch, sgens when scaled, loads when scaled."""
        upd: dict[ComponentType, dict[str, np.ndarray]] = {}
        n = len(self.inj_id)
        pb = np.zeros((steps, n)) if p_bus is None else p_bus
        qb = np.zeros((steps, n)) if q_bus is None else q_bus
        cols = np.flatnonzero((pb != 0).any(axis=0) | (qb != 0).any(axis=0))
        gen_ids, gen_p, gen_q = [self.inj_id[cols]], [pb[:, cols]], [qb[:, cols]]
        if len(self.sgen_id) and sgen_scale is not None:
            s = _scale(sgen_scale, steps, len(self.sgen_id), "sgen_scale")
            gen_ids.append(self.sgen_id)
            gen_p.append(s * self.sgen_p)
            gen_q.append(s * self.sgen_q)
        ids = np.concatenate(gen_ids)
        if len(ids):
            upd[ComponentType.sym_gen] = {
                "id": np.broadcast_to(ids, (steps, len(ids))),
                "p_specified": np.concatenate(gen_p, axis=1),
                "q_specified": np.concatenate(gen_q, axis=1),
            }
        if len(self.load_id) and load_scale is not None:
            s = _scale(load_scale, steps, len(self.model.net.load), "load_scale")[:, self.load_row]
            upd[ComponentType.sym_load] = {
                "id": np.broadcast_to(self.load_id, (steps, len(self.load_id))),
                "p_specified": s * self.load_p,
                "q_specified": s * self.load_q,
            }
        if not upd:  # nothing changes: carry the batch size with one zero injection
            upd[ComponentType.sym_gen] = {
                "id": np.broadcast_to(self.inj_id[:1], (steps, 1)),
                "p_specified": np.zeros((steps, 1)),
                "q_specified": np.zeros((steps, 1)),
            }
        return upd

    def run(
        self,
        p_inj_w: np.ndarray | None = None,
        q_inj_var: np.ndarray | None = None,
        *,
        load_scale: np.ndarray | float | None = None,
        sgen_scale: np.ndarray | float | None = None,
    ) -> PowerFlowResult:
        """Snapshot power flow with extra per-bus injections (n_bus,) [W], [var]."""
        res = self.run_batch(
            None if p_inj_w is None else np.asarray(p_inj_w, float)[None],
            None if q_inj_var is None else np.asarray(q_inj_var, float)[None],
            load_scale=None if load_scale is None else np.atleast_1d(np.asarray(load_scale, float))[None],
            sgen_scale=None if sgen_scale is None else np.atleast_1d(np.asarray(sgen_scale, float))[None],
            steps=1,
        )
        return PowerFlowResult(
            res.bus_ids,
            res.branch_ids,
            res.substation_ids,
            res.vm_pu[0],
            res.loading_pct[0],
            res.p_from_w[0],
            res.losses_w[0],
            res.substation_p_w[0],
            res.converged[0],
        )

    def run_batch(
        self,
        p_inj_w: np.ndarray | None = None,
        q_inj_var: np.ndarray | None = None,
        *,
        load_scale: np.ndarray | float | None = None,
        sgen_scale: np.ndarray | float | None = None,
        steps: int | None = None,
        method: CalculationMethod = CalculationMethod.newton_raphson,
        threads: int = 0,
    ) -> PowerFlowResult:
        """Time series (or scenario batch) power flow.

        ``p_inj_w``/``q_inj_var`` are (steps, n_bus); ``load_scale``/``sgen_scale`` multiply the
        network's loads/sgens as a scalar, a (steps,) profile or a (steps, n_load|n_sgen) matrix.
        Steps that do not converge come back with ``converged`` False and NaN values.
        ``method=CalculationMethod.iterative_current`` factorises the admittance matrix once for
        the whole batch: faster for large batches of one topology, same fixed point.
        ``threads`` is power-grid-model's ``threading``: 0 one per core, -1 none.
        """
        self._ensure()
        n = len(self.node_id)
        if steps is None:
            for x in (p_inj_w, q_inj_var, load_scale, sgen_scale):
                if x is not None and np.ndim(x) >= 1:
                    steps = int(np.shape(x)[0])
                    break
            else:
                steps = 1
        p = _as_2d(p_inj_w, n, steps, "p_inj_w")
        q = _as_2d(q_inj_var, n, steps, "q_inj_var")
        parts = []
        for a in range(0, steps, self.chunk_steps):
            b = min(a + self.chunk_steps, steps)

            def cut(x: Any, a: int = a, b: int = b) -> Any:
                return x[a:b] if isinstance(x, np.ndarray) and x.ndim >= 1 and x.shape[0] == steps else x

            parts.append(
                self._solve(
                    self._update(cut(p), cut(q), cut(load_scale), cut(sgen_scale), b - a),
                    b - a,
                    method,
                    threads,
                )
            )
        return PowerFlowResult(
            self.model.bus_ids,
            self.branch_ids,
            self.model.substations.index,
            *(np.concatenate([getattr(r, f) for r in parts]) for f in _FIELDS),
        )

    def _solve(
        self,
        update: dict[ComponentType, dict[str, np.ndarray]],
        steps: int,
        method: CalculationMethod,
        threads: int,
    ) -> _Chunk:
        outputs = {
            ComponentType.node: ["u_pu", "energized"],
            ComponentType.line: ["loading", "p_from", "p_to"],
            ComponentType.transformer: ["p_from", "p_to", "i_from", "i_to"],
            ComponentType.source: ["p"],
        }
        outputs = {k: v for k, v in outputs.items() if k in self.data and len(self.data[k])}
        converged = np.ones(steps, dtype=bool)
        try:
            out = self.pgm.calculate_power_flow(
                update_data=update,
                output_component_types=outputs,
                calculation_method=method,
                continue_on_batch_error=True,
                threading=threads,
            )
        except PowerGridBatchError as e:
            raise ValidationFailed([str(m) for m in e.error_messages[:3]]) from e
        failed = self.pgm.batch_error
        if failed is not None:
            converged[failed.failed_scenarios] = False
        vm = out[ComponentType.node]["u_pu"].copy()
        vm[out[ComponentType.node]["energized"] == 0] = np.nan
        nb = len(self.branch_ids)
        loading = np.full((steps, nb), np.nan)
        p_from = np.full((steps, nb), np.nan)
        losses = np.zeros(steps)
        for comp, mask, ids in (
            (ComponentType.line, ~self.branch_is_trafo, self.line_id),
            (ComponentType.transformer, self.branch_is_trafo, self.trafo_id),
        ):
            if comp not in out:
                continue
            o = out[comp]
            pos = pd.Index(self.data[comp]["id"]).get_indexer(ids)
            if comp == ComponentType.transformer:
                # rated-current basis, as pandapower: I / (S_n / (sqrt(3) U_n)) on either side
                loading[:, mask] = (
                    np.maximum(
                        o["i_from"][:, pos] * self.trafo_i_scale[0], o["i_to"][:, pos] * self.trafo_i_scale[1]
                    )
                    * 100.0
                )
            else:
                loading[:, mask] = o["loading"][:, pos] * 100.0
            p_from[:, mask] = o["p_from"][:, pos]
            losses += (o["p_from"] + o["p_to"]).sum(axis=1)
        sub_p = np.full((steps, len(self.sub_trafo_pos)), np.nan)
        has_trafo = self.sub_trafo_pos >= 0
        sub_p[:, has_trafo] = p_from[:, self.sub_trafo_pos[has_trafo]]
        if (~has_trafo).any():
            src = out[ComponentType.source]
            pos = pd.Index(self.data[ComponentType.source]["id"]).get_indexer(self.sub_source_id[~has_trafo])
            sub_p[:, ~has_trafo] = src["p"][:, pos]
        node_pos = pd.Index(self.data[ComponentType.node]["id"]).get_indexer(self.node_id)
        vm = vm[:, node_pos]
        bad = ~converged
        for arr in (vm, loading, p_from, sub_p):
            arr[bad] = np.nan
        losses[bad] = np.nan
        return _Chunk(vm, loading, p_from, losses, sub_p, converged)


_FIELDS = ("vm_pu", "loading_pct", "p_from_w", "losses_w", "substation_p_w", "converged")


@dataclass(frozen=True, slots=True)
class _Chunk:
    vm_pu: np.ndarray
    loading_pct: np.ndarray
    p_from_w: np.ndarray
    losses_w: np.ndarray
    substation_p_w: np.ndarray
    converged: np.ndarray


def run_pandapower(
    model: NetworkModel,
    p_inj_w: np.ndarray | None = None,
    q_inj_var: np.ndarray | None = None,
    *,
    load_scale: float | np.ndarray | None = None,
    sgen_scale: float | np.ndarray | None = None,
) -> PowerFlowResult:
    """Reference snapshot power flow with pandapower's Newton-Raphson (``pp.runpp``).

    The injections are added to a copy of the network as static generators.  numba is off:
    its compilation costs far more than it saves on the few reference runs.
    """
    import pandapower as pp

    net = model.net
    if net is None:
        raise ValidationFailed(["pandapower power flow needs a network built from pandapower"])
    net = copy.deepcopy(net)
    n = len(model.bus_ids)
    p = np.zeros(n) if p_inj_w is None else np.asarray(p_inj_w, float)
    q = np.zeros(n) if q_inj_var is None else np.asarray(q_inj_var, float)
    if p.shape != (n,) or q.shape != (n,):
        raise ValidationFailed([f"injections must have shape ({n},)"])
    if load_scale is not None:
        net.load["scaling"] = net.load["scaling"].to_numpy() * np.asarray(load_scale, float)
    if sgen_scale is not None:
        net.sgen["scaling"] = net.sgen["scaling"].to_numpy() * np.asarray(sgen_scale, float)
    at = np.flatnonzero((p != 0) | (q != 0))
    for i in at:
        pp.create_sgen(
            net, int(net.bus.index[i]), p_mw=p[i] / _W_PER_MW, q_mvar=q[i] / _W_PER_MW, name="derms"
        )
    converged = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pp.runpp(net, algorithm="nr", calculate_voltage_angles=True, init="dc", numba=False)
        except pp.LoadflowNotConverged:
            converged = False
    br = model.branches[model.branches["kind"] != "switch"]
    is_trafo = (br["kind"] == "trafo").to_numpy()
    rows = br.index.str.split(":").str[1].astype(int)
    loading = np.full(len(br), np.nan)
    p_from = np.full(len(br), np.nan)
    vm = np.full(n, np.nan)
    losses = np.nan
    sub_p = np.full(len(model.substations), np.nan)
    if converged:
        vm = net.res_bus["vm_pu"].to_numpy(float).copy()
        rl = net.res_line.loc[rows[~is_trafo]]
        rt = net.res_trafo.loc[rows[is_trafo]]
        loading[~is_trafo] = rl["loading_percent"].to_numpy()
        loading[is_trafo] = rt["loading_percent"].to_numpy()
        p_from[~is_trafo] = rl["p_from_mw"].to_numpy() * _W_PER_MW
        p_from[is_trafo] = rt["p_hv_mw"].to_numpy() * _W_PER_MW
        losses = (net.res_line["pl_mw"].sum() + net.res_trafo["pl_mw"].sum()) * _W_PER_MW
        for k, (trafo, bus) in enumerate(
            zip(model.substations["trafo"], model.substations["upstream_bus"], strict=True)
        ):
            if trafo:
                sub_p[k] = p_from[br.index.get_loc(trafo)]
            else:
                eg = net.ext_grid.index[net.ext_grid["bus"] == int(bus)]
                sub_p[k] = net.res_ext_grid.loc[eg, "p_mw"].sum() * _W_PER_MW
    return PowerFlowResult(
        model.bus_ids,
        br.index,
        model.substations.index,
        vm,
        loading,
        p_from,
        np.asarray(losses),
        sub_p,
        np.asarray(converged),
    )
