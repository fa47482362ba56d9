"""The network model: columnar tables of buses, branches, switches, substations and feeders.

Every element has a string id.  Buses of a pandapower network are keyed by their pandapower
index as a string (``"12"``), buses of an OpenDSS circuit by their OpenDSS name; branches are
``"line:<i>"``, ``"trafo:<i>"`` or ``"switch:<i>"`` (a bus-bus switch), switches ``"switch:<i>"``.
A bus-bus switch is both a switch and a zero-impedance branch, so the topology is one graph.

Tables (pandas DataFrames indexed by id):

``buses``
    name, vn_kv, x, y (drawing coordinates: longitude/latitude or the network's own metres
    where it is geo-referenced, a schematic layout otherwise), phases ("ABC", "A", ...),
    substation_id, feeder_id ("" when not energised from a substation), feeder_index (-1 then),
    has_load.
``branches``
    kind ("line", "cable", "trafo", "switch"), from_bus, to_bus, rating_ka (lines and cables,
    thermal current), rating_mva (transformers), length_km, in_service, closed.
``switches``
    bus, element (branch or bus id), et ("line", "trafo", "bus"), closed.
``substations``
    name, upstream_bus, source_bus, trafo (branch id, "" when fed directly).
``feeders``
    substation_id, source_bus (the substation's), head (the branch leaving the busbar, "" for a
    substation without one), n_buses, bus_ids (list).  A feeder is one outgoing bay of a
    substation busbar, traced up to the open switches (see :mod:`derms.grid.topology`).
``loads`` / ``sgens``
    bus, p_w, q_var, phases (loads) or kind (sgens), at their nominal values times scaling.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix

from derms.core.errors import NotFound, ValidationFailed
from derms.grid import topology


@dataclass(frozen=True, slots=True)
class PlannedOutage:
    """A branch (line, cable, transformer, bus-bus switch) taken out of service for a period."""

    element_id: str
    start: datetime
    end: datetime
    reason: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("outage times must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("outage end must be after its start")

    def active(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(eq=False)
class NetworkModel:
    """A distribution network with traced feeders; see the module docstring for the tables.

    ``net`` is the pandapower network the model was built from (the element data the power
    flow engines use), ``dss_path`` the OpenDSS master file for circuits loaded from OpenDSS.
    Topology changes (:meth:`set_switch`, :meth:`set_in_service`, :meth:`at`) re-trace the
    feeders and bump :attr:`topology_version`.
    """

    name: str
    buses: pd.DataFrame
    branches: pd.DataFrame
    switches: pd.DataFrame
    loads: pd.DataFrame
    sgens: pd.DataFrame
    ext_grid_buses: list[str]
    net: Any = None
    dss_path: str | None = None
    unbalanced: bool = False
    substations: pd.DataFrame = field(init=False)
    feeders: pd.DataFrame = field(init=False)
    topology_version: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._bus_pos = pd.Index(self.buses.index)
        self.retrace()

    # ------------------------------------------------------------------ topology
    def retrace(self) -> None:
        """Re-trace substations and feeders from the current switch and service states."""
        br = self.branches
        active = br["in_service"].to_numpy(bool) & br["closed"].to_numpy(bool)
        kind = br["kind"].to_numpy()
        edges = topology.Edges(
            a=self._bus_pos.get_indexer(br["from_bus"]),
            b=self._bus_pos.get_indexer(br["to_bus"]),
            weight_km=br["length_km"].fillna(0.0).to_numpy(float),
            is_trafo=kind == "trafo",
            is_switch=kind == "switch",
            active=active,
        )
        trafos = br[br["kind"] == "trafo"]
        t = topology.trace(
            len(self._bus_pos),
            edges,
            self._bus_pos.get_indexer(self.ext_grid_buses),
            self._bus_pos.get_indexer(trafos["from_bus"]),
            self._bus_pos.get_indexer(trafos["to_bus"]),
            (trafos["in_service"] & trafos["closed"]).to_numpy(bool),
        )
        ids = self._bus_pos
        sub_ids = np.array([f"S{k}" for k in range(len(t.source_bus))], dtype=object)
        trafo_ids = [trafos.index[k] if k >= 0 else "" for k in t.source_trafo]
        self.substations = pd.DataFrame(
            {
                "name": [
                    str(trafos.loc[tr, "name"]) if tr else str(self.buses.loc[ids[s], "name"])
                    for tr, s in zip(trafo_ids, t.source_bus, strict=True)
                ],
                "upstream_bus": ids[t.upstream_bus].to_list(),
                "source_bus": ids[t.source_bus].to_list(),
                "trafo": trafo_ids,
            },
            index=pd.Index(sub_ids.tolist(), name="id"),
        )
        fidx = t.feeder_of_bus
        nf = len(t.feeder_substation)
        feeder_ids = np.array([f"F{k}" for k in range(nf)] + [""], dtype=object)
        self.buses["feeder_index"] = fidx
        self.buses["feeder_id"] = feeder_ids[fidx]
        self.buses["substation_id"] = np.append(sub_ids[t.feeder_substation], "")[fidx]
        counts = np.bincount(fidx[fidx >= 0], minlength=nf)
        self.feeders = pd.DataFrame(
            {
                "substation_id": sub_ids[t.feeder_substation].tolist(),
                "source_bus": ids[t.source_bus[t.feeder_substation]].to_list(),
                "head": [br.index[h] if h >= 0 else "" for h in t.feeder_head],
                "n_buses": counts,
                "bus_ids": [ids[fidx == k].to_list() for k in range(nf)],
            },
            index=pd.Index(feeder_ids[:-1].tolist(), name="id"),
        )
        self.topology_version += 1

    def set_switch(self, switch_id: str, closed: bool) -> None:
        """Open or close a switch and re-trace the feeders."""
        if switch_id not in self.switches.index:
            raise NotFound("switch", switch_id)
        self.switches.loc[switch_id, "closed"] = bool(closed)
        sw = self.switches.loc[switch_id]
        if self.net is not None:
            self.net.switch.loc[int(switch_id.split(":")[1]), "closed"] = bool(closed)
        if sw["et"] == "bus":
            self.branches.loc[switch_id, "closed"] = bool(closed)
        else:
            on_element = self.switches[self.switches["element"] == sw["element"]]
            self.branches.loc[sw["element"], "closed"] = bool(on_element["closed"].all())
        self.retrace()

    def set_in_service(self, branch_id: str, in_service: bool) -> None:
        """Take a branch out of service (or back) and re-trace the feeders."""
        if branch_id not in self.branches.index:
            raise NotFound("branch", branch_id)
        self.branches.loc[branch_id, "in_service"] = bool(in_service)
        if self.net is not None:
            table, idx = branch_id.split(":")
            self.net[table].loc[int(idx), "in_service"] = bool(in_service)
        self.retrace()

    def at(self, when: datetime, outages: Sequence[PlannedOutage]) -> NetworkModel:
        """A copy of this model with the outages active at ``when`` applied."""
        unknown = [o.element_id for o in outages if o.element_id not in self.branches.index]
        if unknown:
            raise ValidationFailed([f"outage of unknown branch {u!r}" for u in unknown])
        out = self.copy()
        for o in outages:
            if o.active(when):
                out.branches.loc[o.element_id, "in_service"] = False
                if out.net is not None:
                    table, idx = o.element_id.split(":")
                    out.net[table].loc[int(idx), "in_service"] = False
        out.retrace()
        return out

    def copy(self) -> NetworkModel:
        return copy.deepcopy(self)

    # ------------------------------------------------------------------ lookups
    @property
    def bus_ids(self) -> pd.Index:
        return self._bus_pos

    @property
    def feeder_ids(self) -> list[str]:
        """Feeder ids in feeder-index order."""
        return self.feeders.index.to_list()

    def bus_positions(self, bus_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Row positions of ``bus_ids`` in :attr:`buses`; raises for an unknown id."""
        pos = self._bus_pos.get_indexer(pd.Index(np.asarray(bus_ids, dtype=object)))
        if (pos < 0).any():
            missing = np.asarray(bus_ids, dtype=object)[pos < 0][:5].tolist()
            raise NotFound("bus", missing if len(missing) > 1 else missing[0])
        return pos

    def feeder_of_bus(self, bus_id: str) -> str | None:
        """The feeder that energises ``bus_id`` now, or ``None`` when no substation does."""
        if bus_id not in self._bus_pos:
            raise NotFound("bus", bus_id)
        fid = self.buses.at[bus_id, "feeder_id"]
        return fid or None

    def feeder_index(self, bus_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Feeder index (into :attr:`feeder_ids`) of each bus, -1 where unenergised.

        This is the column ``derms.fleet`` keeps per DER: pass each DER's bus id.
        """
        return self.buses["feeder_index"].to_numpy()[self.bus_positions(bus_ids)]

    def feeder_buses(self, feeder_id: str) -> list[str]:
        if feeder_id not in self.feeders.index:
            raise NotFound("feeder", feeder_id)
        return self.buses.index[self.buses["feeder_id"] == feeder_id].to_list()

    def incidence(self, bus_ids: Sequence[str] | np.ndarray) -> csr_matrix:
        """Sparse (n_items x n_bus) matrix that sums per-item values onto buses.

        ``values @ model.incidence(der_bus)`` turns (..., n_der) DER injections into
        (..., n_bus) bus injections.
        """
        pos = self.bus_positions(bus_ids)
        n = len(pos)
        return csr_matrix((np.ones(n), (np.arange(n), pos)), shape=(n, len(self._bus_pos)))

    def bus_vector(self, bus_ids: Sequence[str] | np.ndarray, values: np.ndarray) -> np.ndarray:
        """Sum per-item values (last axis aligned with ``bus_ids``) onto an (..., n_bus) array."""
        values = np.asarray(values, dtype=float)
        pos = self.bus_positions(bus_ids)
        out = np.zeros((*values.shape[:-1], len(self._bus_pos)))
        np.add.at(out, (..., pos), values)
        return out
