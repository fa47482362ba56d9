"""Map sites and DERs onto the network: attachment buses, nearest bus, spreading a fleet.

The fleet (``derms.fleet``) keeps one row per DER with a feeder index; build it with
``model.feeder_index(der_bus_ids)`` after mapping each DER's site to a bus here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from derms.core.errors import ValidationFailed
from derms.grid.model import NetworkModel


def attachment_buses(model: NetworkModel, *, min_load_w: float = 0.0) -> pd.DataFrame:
    """Buses where customers (and so DERs) connect: energised buses carrying load.

    Columns: feeder_id, feeder_index, load_w (sum of the bus's loads [W]), phases, x, y;
    indexed by bus id, in network order.
    """
    load_w = model.loads.groupby("bus")["p_w"].sum()
    b = model.buses
    out = pd.DataFrame(
        {
            "feeder_id": b["feeder_id"],
            "feeder_index": b["feeder_index"],
            "load_w": load_w.reindex(b.index).fillna(0.0),
            "phases": b["phases"],
            "x": b["x"],
            "y": b["y"],
        }
    )
    keep = b["has_load"] & (b["feeder_index"] >= 0) & (out["load_w"] >= min_load_w)
    return out[keep.to_numpy()]


def spread_ders(model: NetworkModel, n: int, *, seed: int = 0, by_load: bool = True) -> np.ndarray:
    """Bus ids for ``n`` DERs spread over the attachment buses (weighted by load when
    ``by_load``), reproducibly for a given ``seed``; every attachment bus gets at least one
    DER when ``n`` allows."""
    buses = attachment_buses(model)
    if buses.empty:
        raise ValidationFailed([f"network {model.name!r} has no energised bus carrying load"])
    if n < 0:
        raise ValidationFailed(["n must be non-negative"])
    rng = np.random.default_rng(seed)
    ids = buses.index.to_numpy(dtype=object)
    first = ids[: min(n, len(ids))]
    w = buses["load_w"].clip(lower=0).to_numpy() if by_load else np.ones(len(ids))
    w = w / w.sum() if w.sum() > 0 else np.full(len(ids), 1 / len(ids))
    rest = rng.choice(ids, size=n - len(first), p=w)
    out = np.concatenate([first, rest])
    rng.shuffle(out)
    return out


def nearest_bus(
    model: NetworkModel, x: np.ndarray, y: np.ndarray, *, attachment_only: bool = True
) -> np.ndarray:
    """Bus id nearest to each point, in the network's own coordinates (longitude/latitude for
    geo-referenced networks; nearest in that plane, adequate within one feeder's extent)."""
    cand = attachment_buses(model) if attachment_only else model.buses[model.buses["feeder_index"] >= 0]
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.shape != y.shape or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValidationFailed(["x and y must be finite arrays of one shape"])
    tree = cKDTree(cand[["x", "y"]].to_numpy())
    _, idx = tree.query(np.column_stack([x.ravel(), y.ravel()]))
    return cand.index.to_numpy(dtype=object)[idx].reshape(x.shape)
