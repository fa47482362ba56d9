"""Feeder tracing: which substation and feeder energises each bus.

A *source transformer* is a transformer whose high-voltage side reaches an external grid
without passing through another transformer; its low-voltage bus is a *source bus* and the
two together form a substation.  Where an external grid connects directly at distribution
voltage (no transformer), the external-grid bus itself is the source bus.  The source bus and
the buses joined to it by closed bus-bus switches form the substation's *busbar*.

A *feeder* is one outgoing bay: each line, cable or transformer with one end on a busbar
(in any state, so the feeder list only changes with the substations) heads one feeder, which
is everything traced from that branch through in-service branches and closed switches; an open
switch (a normally-open point) ends it.  A bus reachable through several heads (a closed tie)
belongs to the nearest, measured in line length from the busbar.  The busbar itself is counted
with its substation's first feeder, so that whatever connects there is in a feeder too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

_TRAFO_WEIGHT_KM = 1e-6
"""Edge weight given to a transformer or bus-bus switch in the distance trace [km]."""


@dataclass(frozen=True, slots=True)
class Edges:
    """Undirected graph edges between bus positions ``0..n_bus-1``."""

    a: np.ndarray
    b: np.ndarray
    weight_km: np.ndarray
    is_trafo: np.ndarray
    is_switch: np.ndarray
    """Bus-bus switch (zero impedance)."""
    active: np.ndarray
    """In service and closed."""


@dataclass(frozen=True, slots=True)
class Trace:
    """The result of tracing: one source per substation, a feeder index per bus (-1: none)."""

    source_bus: np.ndarray
    """Position of each substation's source bus."""
    source_trafo: np.ndarray
    """Position of each substation's transformer in the trafo list, or -1 without one."""
    upstream_bus: np.ndarray
    """Position of the bus feeding each source bus (the transformer's HV bus or itself)."""
    feeder_of_bus: np.ndarray
    """Feeder index of every bus; -1 when upstream of a source or unenergised."""
    feeder_substation: np.ndarray
    """Substation index of each feeder."""
    feeder_head: np.ndarray
    """Edge index of each feeder's head branch (-1: a substation without outgoing branches)."""


def _graph(n: int, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> coo_matrix:
    return coo_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(n, n)).tocsr()


def trace(
    n_bus: int,
    edges: Edges,
    ext_grid_bus: np.ndarray,
    trafo_hv: np.ndarray,
    trafo_lv: np.ndarray,
    trafo_active: np.ndarray,
) -> Trace:
    """Trace substations and feeders.

    ``trafo_active[k]`` tells whether transformer ``k`` is in service with its switches closed.
    """
    act = edges.active
    a, b = edges.a, edges.b
    lines = act & ~edges.is_trafo
    g0 = _graph(n_bus, a[lines], b[lines], edges.weight_km[lines])
    _, comp = connected_components(g0, directed=False)
    grid_comps = set(comp[ext_grid_bus].tolist())
    upstream = np.isin(comp, list(grid_comps))

    by_bus: dict[int, tuple[int, int, int]] = {}
    for k in range(len(trafo_hv)):
        if trafo_active[k] and upstream[trafo_hv[k]] and not upstream[trafo_lv[k]]:
            by_bus.setdefault(int(trafo_lv[k]), (int(trafo_lv[k]), k, int(trafo_hv[k])))
    fed_by_trafo = {comp[hv] for _, _, hv in by_bus.values()}
    for bus in ext_grid_bus.tolist():
        if comp[bus] not in fed_by_trafo:
            by_bus.setdefault(int(bus), (int(bus), -1, int(bus)))
            upstream[comp == comp[bus]] = False
    sources = sorted(by_bus.values())
    src = np.array([s for s, _, _ in sources], dtype=np.int64)

    # busbars: the source buses and what closed bus-bus switches join to them
    sw = act & edges.is_switch
    _, sw_comp = connected_components(_graph(n_bus, a[sw], b[sw], np.ones(sw.sum())), directed=False)
    busbar = np.full(n_bus, -1, dtype=np.int64)
    for k, s in enumerate(src):
        busbar[sw_comp == sw_comp[s]] = k
    # heads: branches (not bus-bus switches, not towards the upstream grid) leaving a busbar
    on_a, on_b = busbar[a] >= 0, busbar[b] >= 0
    head = ~edges.is_switch & (on_a ^ on_b) & ~upstream[a] & ~upstream[b]
    head_idx = np.flatnonzero(head)
    head_sub = np.where(on_a, busbar[a], busbar[b])[head_idx]
    head_far = np.where(on_a, b, a)[head_idx]
    fsub, fhead, far = [], [], []
    for k in range(len(src)):
        mine = head_sub == k
        fsub.extend([k] * max(int(mine.sum()), 1))
        fhead.extend(head_idx[mine].tolist() or [-1])
        far.extend(head_far[mine].tolist() or [-1])
    fsub_a, fhead_a, far_a = (np.array(x, dtype=np.int64) for x in (fsub, fhead, far))

    feeder = np.full(n_bus, -1, dtype=np.int64)
    for k in range(len(src)):
        feeder[busbar == k] = np.flatnonzero(fsub_a == k)[0]
    live = fhead_a >= 0
    live[live] = act[fhead_a[live]]
    if live.any():
        # one virtual node per live head, joined to its far bus by the head's length
        keep = act & ~(upstream[a] | upstream[b]) & (busbar[a] < 0) & (busbar[b] < 0)
        virt = n_bus + np.flatnonzero(live)
        w = np.maximum(edges.weight_km, _TRAFO_WEIGHT_KM)
        n = n_bus + len(fhead_a)
        g = _graph(
            n,
            np.r_[a[keep], virt],
            np.r_[b[keep], far_a[live]],
            np.r_[w[keep], w[fhead_a[live]]],
        )
        dist, _, origin = dijkstra(g, directed=False, indices=virt, min_only=True, return_predecessors=True)
        reached = np.isfinite(dist[:n_bus]) & (busbar < 0)
        feeder[reached] = origin[:n_bus][reached] - n_bus
    return Trace(
        source_bus=src,
        source_trafo=np.array([t for _, t, _ in sources], dtype=np.int64),
        upstream_bus=np.array([u for _, _, u in sources], dtype=np.int64),
        feeder_of_bus=feeder,
        feeder_substation=fsub_a,
        feeder_head=fhead_a,
    )
