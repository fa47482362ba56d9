"""Load network models: the networks that ship with pandapower, and OpenDSS circuits.

Networks (all shipped inside the pandapower wheel, nothing is fetched):

=========================  ==============================================================
name                       pandapower function
=========================  ==============================================================
``mv_oberrhein``           ``mv_oberrhein()``: 179-bus 20 kV, two HV/MV substations
``cigre_mv``               ``create_cigre_network_mv(with_der="pv_wind")``: CIGRE TF C6.04.02
``cigre_lv``               ``create_cigre_network_lv()``: CIGRE LV, three MV/LV substations
``kerber_landnetz_kabel``  ``create_kerber_landnetz_kabel_1()`` (also ``kerber_dorfnetz``,
                           ``kerber_vorstadtnetz_kabel``, ``kerber_landnetz_freileitung``)
``ieee_european_lv``       ``ieee_european_lv_asymmetric("on_peak_566")``: 907 buses, unbalanced
``case33bw``               ``case33bw()``: Baran & Wu 33-bus feeder
=========================  ==============================================================

``mv_oberrhein`` ships with ``sgen.scaling = 0`` (its DER switched off) and ``load.scaling = 0.6``;
pass ``sgen_scaling``/``load_scaling`` to override.  Each of its two substations has two
outgoing lines, so it traces to four feeders (37, 32, 45 and 63 MV buses).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from derms.core.errors import NotFound
from derms.grid.model import NetworkModel

_W_PER_MW = 1e6


def _mv_oberrhein(scenario: str = "load", cosphi_load: float = 0.98, cosphi_pv: float = 1.0) -> Any:
    """pandapower's ``mv_oberrhein`` scenarios, read from the JSON file pandapower ships.

    Same data and scenario settings as ``pandapower.networks.mv_oberrhein`` (load: loads at
    0.6, PV off, HV/MV taps -2/-3; generation: loads at 0.1, PV at 0.8, taps 0), without the
    power flow that function runs on every call (whose numba compilation costs seconds).
    """
    import os

    import pandapower as pp

    settings = {"load": (0.6, 0.0, [-2.0, -3.0]), "generation": (0.1, 0.8, [0.0, 0.0])}
    if scenario not in settings:
        raise ValueError(f"unknown mv_oberrhein scenario {scenario!r}: choose 'load' or 'generation'")
    net = pp.from_json(os.path.join(os.path.dirname(pp.__file__), "networks", "mv_oberrhein.json"))
    net.load["q_mvar"] = np.tan(np.arccos(cosphi_load)) * net.load["p_mw"]
    net.sgen["q_mvar"] = np.tan(np.arccos(cosphi_pv)) * net.sgen["p_mw"]
    load_scaling, sgen_scaling, taps = settings[scenario]
    net.load["scaling"] = load_scaling
    net.sgen["scaling"] = sgen_scaling
    net.trafo["tap_pos"] = net.trafo["tap_pos"].astype("float64")
    net.trafo.loc[net.trafo.index[net.trafo["sn_mva"] > 1], "tap_pos"] = taps
    return net


def _networks() -> dict[str, Callable[..., Any]]:
    import pandapower.networks as pn

    return {
        "mv_oberrhein": _mv_oberrhein,
        "cigre_mv": lambda **kw: pn.create_cigre_network_mv(**({"with_der": "pv_wind"} | kw)),
        "cigre_lv": pn.create_cigre_network_lv,
        "kerber_landnetz_kabel": pn.create_kerber_landnetz_kabel_1,
        "kerber_landnetz_freileitung": pn.create_kerber_landnetz_freileitung_1,
        "kerber_dorfnetz": pn.create_kerber_dorfnetz,
        "kerber_vorstadtnetz_kabel": pn.create_kerber_vorstadtnetz_kabel_1,
        "ieee_european_lv": lambda **kw: pn.ieee_european_lv_asymmetric(**({"scenario": "on_peak_566"} | kw)),
        "case33bw": pn.case33bw,
    }


NETWORK_NAMES: tuple[str, ...] = (
    "mv_oberrhein",
    "cigre_mv",
    "cigre_lv",
    "kerber_landnetz_kabel",
    "kerber_landnetz_freileitung",
    "kerber_dorfnetz",
    "kerber_vorstadtnetz_kabel",
    "ieee_european_lv",
    "case33bw",
)


def load_network(
    name: str,
    *,
    load_scaling: float | None = None,
    sgen_scaling: float | None = None,
    **options: Any,
) -> NetworkModel:
    """Load one of the pandapower-shipped networks (see the module docstring) as a model.

    ``options`` go to the pandapower function (e.g. ``scenario="off_peak_1"`` for
    ``ieee_european_lv``).
    """
    factories = _networks()
    if name not in factories:
        raise NotFound("network", name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = factories[name](**options)
    if load_scaling is not None:
        net.load["scaling"] = float(load_scaling)
        net.asymmetric_load["scaling"] = float(load_scaling)
    if sgen_scaling is not None:
        net.sgen["scaling"] = float(sgen_scaling)
    return from_pandapower(net, name=name)


def _xy(net: Any) -> tuple[np.ndarray, np.ndarray]:
    n = len(net.bus)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    if "geo" in net.bus.columns:
        for i, g in enumerate(net.bus["geo"].to_numpy()):
            if isinstance(g, str) and g:
                x[i], y[i] = json.loads(g)["coordinates"][:2]
    return x, y


def _bus_phases(net: Any) -> np.ndarray:
    phases = np.full(len(net.bus), "ABC", dtype=object)
    al = net.asymmetric_load
    if len(al):
        pos = net.bus.index.get_indexer(al["bus"])
        p = al[["p_a_mw", "p_b_mw", "p_c_mw"]].abs().to_numpy() > 0
        one = p.sum(axis=1) == 1
        phases[pos[one]] = np.array(["A", "B", "C"])[p[one].argmax(axis=1)]
    return phases


def from_pandapower(net: Any, *, name: str = "network") -> NetworkModel:
    """Build a :class:`NetworkModel` around a pandapower network (kept as ``model.net``)."""
    bus_id = net.bus.index.astype(str)
    x, y = _xy(net)
    loads = pd.DataFrame(
        {
            "bus": net.load["bus"].astype(str).to_numpy(),
            "p_w": (net.load["p_mw"] * net.load["scaling"]).to_numpy() * _W_PER_MW,
            "q_var": (net.load["q_mvar"] * net.load["scaling"]).to_numpy() * _W_PER_MW,
            "phases": "ABC",
        },
        index=pd.Index("load:" + net.load.index.astype(str), name="id"),
    )
    al = net.asymmetric_load
    if len(al):
        phases = _bus_phases(net)
        aload = pd.DataFrame(
            {
                "bus": al["bus"].astype(str).to_numpy(),
                "p_w": al[["p_a_mw", "p_b_mw", "p_c_mw"]].sum(axis=1).to_numpy()
                * al["scaling"].to_numpy()
                * _W_PER_MW,
                "q_var": al[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].sum(axis=1).to_numpy()
                * al["scaling"].to_numpy()
                * _W_PER_MW,
                "phases": phases[net.bus.index.get_indexer(al["bus"])],
            },
            index=pd.Index("asymmetric_load:" + al.index.astype(str), name="id"),
        )
        loads = pd.concat([loads, aload])
    sgens = pd.DataFrame(
        {
            "bus": net.sgen["bus"].astype(str).to_numpy(),
            "p_w": (net.sgen["p_mw"] * net.sgen["scaling"]).to_numpy() * _W_PER_MW,
            "q_var": (net.sgen["q_mvar"] * net.sgen["scaling"]).to_numpy() * _W_PER_MW,
            "kind": net.sgen["type"].astype(str).to_numpy() if "type" in net.sgen else "",
        },
        index=pd.Index("sgen:" + net.sgen.index.astype(str), name="id"),
    )
    buses = pd.DataFrame(
        {
            "name": net.bus["name"].astype(str).to_numpy(),
            "vn_kv": net.bus["vn_kv"].to_numpy(float),
            "x": x,
            "y": y,
            "phases": _bus_phases(net),
            "in_service": net.bus["in_service"].to_numpy(bool),
            "has_load": net.bus.index.isin(pd.concat([net.load["bus"], net.asymmetric_load["bus"]])),
        },
        index=pd.Index(bus_id, name="id"),
    )
    sw = net.switch
    et_name = {"l": "line", "t": "trafo", "b": "bus"}
    switches = pd.DataFrame(
        {
            "bus": sw["bus"].astype(str).to_numpy(),
            "element": [
                str(e) if et == "b" else f"{et_name[et]}:{e}"
                for et, e in zip(sw["et"], sw["element"], strict=True)
            ],
            "et": [et_name.get(et, et) for et in sw["et"]],
            "closed": sw["closed"].to_numpy(bool),
        },
        index=pd.Index("switch:" + sw.index.astype(str), name="id"),
    )
    line_kind = np.where(net.line["type"].astype(str).str.startswith("ol"), "line", "cable")
    lines = pd.DataFrame(
        {
            "kind": line_kind,
            "name": net.line["name"].astype(str).to_numpy(),
            "from_bus": net.line["from_bus"].astype(str).to_numpy(),
            "to_bus": net.line["to_bus"].astype(str).to_numpy(),
            "rating_ka": (net.line["max_i_ka"] * net.line["df"] * net.line["parallel"]).to_numpy(float),
            "rating_mva": np.nan,
            "length_km": net.line["length_km"].to_numpy(float),
            "in_service": net.line["in_service"].to_numpy(bool),
        },
        index=pd.Index("line:" + net.line.index.astype(str), name="id"),
    )
    trafos = pd.DataFrame(
        {
            "kind": "trafo",
            "name": net.trafo["name"].astype(str).to_numpy(),
            "from_bus": net.trafo["hv_bus"].astype(str).to_numpy(),
            "to_bus": net.trafo["lv_bus"].astype(str).to_numpy(),
            "rating_ka": np.nan,
            "rating_mva": (net.trafo["sn_mva"] * net.trafo["parallel"]).to_numpy(float),
            "length_km": 0.0,
            "in_service": net.trafo["in_service"].to_numpy(bool),
        },
        index=pd.Index("trafo:" + net.trafo.index.astype(str), name="id"),
    )
    bb = sw[sw["et"] == "b"]
    bus_switches = pd.DataFrame(
        {
            "kind": "switch",
            "name": bb["name"].astype(str).to_numpy(),
            "from_bus": bb["bus"].astype(str).to_numpy(),
            "to_bus": bb["element"].astype(str).to_numpy(),
            "rating_ka": np.nan,
            "rating_mva": np.nan,
            "length_km": 0.0,
            "in_service": True,
        },
        index=pd.Index("switch:" + bb.index.astype(str), name="id"),
    )
    branches = pd.concat([df for df in (lines, trafos, bus_switches) if len(df)])
    branches["closed"] = True
    for element, closed in switches.groupby("element")["closed"].all().items():
        if element in branches.index:
            branches.loc[element, "closed"] = bool(closed)
    model = NetworkModel(
        name=name,
        buses=buses,
        branches=branches,
        switches=switches,
        loads=loads,
        sgens=sgens,
        ext_grid_buses=net.ext_grid.loc[net.ext_grid["in_service"], "bus"].astype(str).to_list(),
        net=net,
        unbalanced=bool(len(al)),
    )
    schematic_layout(model)
    return model


def schematic_layout(model: NetworkModel) -> None:
    """Give buses without coordinates a schematic tree layout (x: hops from the source)."""
    missing = model.buses["x"].isna().to_numpy()
    if not missing.any():
        return
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import breadth_first_order, shortest_path

    br = model.branches[model.branches["in_service"] & model.branches["closed"]]
    pos = model.bus_ids
    a, b = pos.get_indexer(br["from_bus"]), pos.get_indexer(br["to_bus"])
    n = len(pos)
    g = coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)).tocsr()
    roots = pos.get_indexer(model.ext_grid_buses)
    hops = shortest_path(g, directed=False, unweighted=True, indices=roots).min(axis=0)
    hops[~np.isfinite(hops)] = -1
    order: list[int] = []
    for r in roots:
        order.extend(int(i) for i in breadth_first_order(g, r, directed=False, return_predecessors=False))
    order.extend(i for i in range(n) if i not in set(order))
    rank = np.zeros(n)
    for depth in np.unique(hops):
        at = [i for i in order if hops[i] == depth]
        rank[at] = np.arange(len(at)) - (len(at) - 1) / 2
    model.buses.loc[missing, "x"] = hops[missing]
    model.buses.loc[missing, "y"] = -rank[missing]
