"""The grid as the console draws it: a live AC power flow of the network with the fleet's
measured injections, and each feeder's schematic from the network's bus coordinates.

The power flow is power-grid-model's Newton-Raphson (:class:`derms.grid.powerflow.PgmEngine`)
with the network's base loads and one extra injection per bus: the sum of the latest
measured active and reactive power of the online DERs connected there. Limits are ANSI C84.1
Range A voltages and 100 % thermal loading (:mod:`derms.grid.limits`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from sqlalchemy import select

from derms.grid.limits import Limits, check
from derms.grid.model import NetworkModel
from derms.grid.powerflow import PgmEngine, PowerFlowResult
from derms.runtime import Runtime
from derms.store.schema import ders, sites

SCHEMATIC_W = 640.0
SCHEMATIC_H = 420.0
PAD = 16.0


def loading_class(pct: float) -> str:
    """CSS class of a branch by loading: ok < 60 % ≤ warm < 90 % ≤ hot < 100 % ≤ over."""
    if not np.isfinite(pct):
        return "dead"
    if pct >= 100:
        return "over"
    if pct >= 90:
        return "hot"
    if pct >= 60:
        return "warm"
    return "ok"


def voltage_class(vm: float, lower: float, upper: float) -> str:
    if not np.isfinite(vm):
        return "dead"
    if vm > upper or vm < lower:
        return "over"
    if vm > upper - 0.01 or vm < lower + 0.01:
        return "hot"
    return "ok"


@dataclass(frozen=True, slots=True)
class Schematic:
    """One feeder's drawing in SVG user units."""

    feeder_id: str
    buses: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    clusters: list[dict[str, Any]]


class GridView:
    """Live power flow and drawings for ``runtime.network`` (a pandapower-built model)."""

    def __init__(self, runtime: Runtime, limits: Limits | None = None) -> None:
        self.rt = runtime
        self.model: NetworkModel = runtime.network
        self.limits = limits or Limits.ansi()
        self.engine = PgmEngine(self.model)
        self.result: PowerFlowResult | None = None
        self.der_bus_pos = np.full(0, -1, np.int64)
        self.load_der_buses()

    def load_der_buses(self) -> None:
        """Map each fleet row to its site's bus position (−1 when unknown)."""
        with self.rt.engine.connect() as conn:
            rows = conn.execute(
                select(ders.c.idx, sites.c.bus).join(sites, sites.c.id == ders.c.site_id)
            ).all()
        pos = np.full(len(self.rt.fleet), -1, np.int64)
        index = self.model.bus_ids
        for idx, bus in rows:
            if bus is not None and idx < len(pos):
                k = index.get_indexer([str(bus)])[0]
                pos[idx] = k
        self.der_bus_pos = pos

    def injections(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-bus extra injections [W], [var] from the online DERs' latest measurements."""
        fleet = self.rt.fleet
        n = min(len(self.der_bus_pos), len(fleet))
        pos = self.der_bus_pos[:n]
        use = (pos >= 0) & fleet.online[:n] & fleet.registered[:n]
        nb = len(self.model.bus_ids)
        p = np.bincount(pos[use], weights=np.nan_to_num(fleet.p_w[:n][use]), minlength=nb)
        q = np.bincount(pos[use], weights=np.nan_to_num(fleet.q_var[:n][use]), minlength=nb)
        return p, q

    def solve(self) -> PowerFlowResult:
        p, q = self.injections()
        self.result = self.engine.run(p, q)
        return self.result

    def violations(self) -> list[tuple[str, str, str]]:
        """(kind, element, message) for each limit violation in the latest result."""
        if self.result is None:
            return []
        report = check(self.result, self.model, self.limits)
        out = []
        for row in report.itertuples():
            kind = str(row.kind)
            unit = "pu" if "voltage" in kind else ("%" if kind == "thermal" else "W")
            out.append(
                (
                    kind,
                    str(row.element),
                    f"{kind} at {row.element}: {row.value:.3f} {unit} (limit {row.limit:.3f})",
                )
            )
        return out

    def substation_load(self) -> dict[str, float]:
        """Active power drawn by each feeder from its substation busbar [W], measured on the
        feeder's head branch (losses on the head ignored where it points towards the busbar)."""
        assert self.result is not None
        p = pd.Series(self.result.p_from_w, index=self.result.branch_ids)
        out = {}
        for fid, f in self.model.feeders.iterrows():
            head = f["head"]
            if not head or head not in p.index:
                out[str(fid)] = float("nan")
                continue
            sign = 1.0 if self.model.branches.loc[head, "from_bus"] == f["source_bus"] else -1.0
            out[str(fid)] = sign * float(p[head])
        return out

    def feeder_limit_w(self, feeder_id: str) -> float | None:
        """Rating of the feeder's head branch [VA], as the load limit to plot."""
        f = self.model.feeders.loc[feeder_id]
        if not f["head"]:
            return None
        br = self.model.branches.loc[f["head"]]
        if br["kind"] == "trafo":
            return float(br["rating_mva"]) * 1e6
        vn_kv = float(self.model.buses.loc[f["source_bus"], "vn_kv"])
        return float(np.sqrt(3) * vn_kv * br["rating_ka"]) * 1e6

    def live(self) -> dict[str, Any]:
        """Per-element classes and values for the SSE stream."""
        if self.result is None:
            return {"lines": {}, "buses": {}}
        lo, hi = self.limits.bus_bounds(self.model)
        r = self.result
        lines = {
            str(b): [round(float(v), 1), loading_class(float(v))]
            for b, v in zip(r.branch_ids, r.loading_pct, strict=True)
        }
        buses = {
            str(b): [round(float(v), 4), voltage_class(float(v), lo[k], hi[k])]
            for k, (b, v) in enumerate(zip(r.bus_ids, r.vm_pu, strict=True))
        }
        return {"lines": lines, "buses": buses}

    def schematic(self, feeder_id: str) -> Schematic:
        """Buses, branches and DER clusters of one feeder scaled into the drawing box."""
        m = self.model
        buses = m.buses[m.buses["feeder_id"] == feeder_id]
        x, y = buses["x"].to_numpy(float), buses["y"].to_numpy(float)
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            return Schematic(feeder_id, [], [], [])
        x0, x1, y0, y1 = x[ok].min(), x[ok].max(), y[ok].min(), y[ok].max()
        scale = min(
            (SCHEMATIC_W - 2 * PAD) / max(x1 - x0, 1e-9), (SCHEMATIC_H - 2 * PAD) / max(y1 - y0, 1e-9)
        )

        def sx(v: float) -> float:
            return round(PAD + (v - x0) * scale, 1)

        def sy(v: float) -> float:
            return round(SCHEMATIC_H - PAD - (v - y0) * scale, 1)

        xy = {b: (sx(bx), sy(by)) for b, bx, by, good in zip(buses.index, x, y, ok, strict=True) if good}
        lines = []
        for bid, br in m.branches.iterrows():
            a, b = xy.get(br["from_bus"]), xy.get(br["to_bus"])
            if a is None or b is None:
                continue
            lines.append(
                {
                    "id": str(bid),
                    "x1": a[0],
                    "y1": a[1],
                    "x2": b[0],
                    "y2": b[1],
                    "kind": br["kind"],
                    "closed": bool(br["closed"] and br["in_service"]),
                }
            )
        fleet = self.rt.fleet
        n = min(len(self.der_bus_pos), len(fleet))
        counts = np.bincount(self.der_bus_pos[:n][self.der_bus_pos[:n] >= 0], minlength=len(m.bus_ids))
        clusters = []
        for b, (px, py) in xy.items():
            k = int(counts[m.bus_ids.get_loc(b)])
            if k:
                clusters.append(
                    {"bus": str(b), "x": px, "y": py, "ders": k, "r": round(2 + 1.5 * np.sqrt(k), 1)}
                )
        bus_list = [
            {"id": str(b), "x": p[0], "y": p[1], "name": str(m.buses.loc[b, "name"])} for b, p in xy.items()
        ]
        return Schematic(feeder_id, bus_list, lines, clusters)

    def voltage_profile(self, feeder_id: str) -> list[tuple[float, float, str]]:
        """(distance from the feeder's source bus [km], voltage [pu], bus id) along the feeder."""
        if self.result is None:
            return []
        m = self.model
        br = m.branches[m.branches["in_service"] & m.branches["closed"]]
        ids = m.bus_ids
        a, b = ids.get_indexer(br["from_bus"]), ids.get_indexer(br["to_bus"])
        w = br["length_km"].fillna(0.0).to_numpy(float) + 1e-6
        graph = coo_matrix((w, (a, b)), shape=(len(ids), len(ids))).tocsr()
        source = ids.get_loc(m.feeders.loc[feeder_id, "source_bus"])
        dist = dijkstra(graph, directed=False, indices=source)
        vm = pd.Series(self.result.vm_pu, index=self.result.bus_ids)
        members = m.buses.index[m.buses["feeder_id"] == feeder_id]
        out = [(float(dist[ids.get_loc(bus)]), float(vm.get(bus, np.nan)), str(bus)) for bus in members]
        return sorted((d, v, bus) for d, v, bus in out if np.isfinite(d) and np.isfinite(v))
