"""Feeder tracing: which substation and feeder energises each bus.

A *source transformer* is a transformer whose high-voltage side reaches an external grid
without passing through another transformer; its low-voltage bus is a *source bus* and the
two together form a substation.  Where an external grid connects directly at distribution
voltage (no transformer), the external-grid bus itself is the source bus.  Every other bus is
traced from the source buses through in-service branches and closed switches; a bus reachable
from several sources (a closed tie) belongs to the electrically nearest one, measured in line
length.
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
    """Feeder (= substation) index of every bus; -1 when upstream of a source or unenergised."""


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
    not_trafo = ~edges.is_trafo
    g0 = _graph(n_bus, edges.a[not_trafo], edges.b[not_trafo], edges.weight_km[not_trafo])
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

    feeder = np.full(n_bus, -1, dtype=np.int64)
    if sources:
        keep = ~(upstream[edges.a] | upstream[edges.b])
        g = _graph(n_bus, edges.a[keep], edges.b[keep], np.maximum(edges.weight_km[keep], _TRAFO_WEIGHT_KM))
        src = np.array([s for s, _, _ in sources])
        dist, _, origin = dijkstra(g, directed=False, indices=src, min_only=True, return_predecessors=True)
        reached = np.isfinite(dist)
        feeder[reached] = np.searchsorted(src, origin[reached])
    return Trace(
        source_bus=np.array([s for s, _, _ in sources], dtype=np.int64),
        source_trafo=np.array([t for _, t, _ in sources], dtype=np.int64),
        upstream_bus=np.array([u for _, _, u in sources], dtype=np.int64),
        feeder_of_bus=feeder,
    )
