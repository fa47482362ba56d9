"""OpenDSS circuits: import into a :class:`NetworkModel` and unbalanced power flow.

Through opendssdirect.py (the DSS-Extensions engine).  OpenDSS solves every phase, so it is
the reference for unbalanced feeders.  OpenDSS keeps one circuit per process; an engine
recompiles its circuit whenever the model's topology changed since the last compile.

Ids: buses by their OpenDSS name, branches ``line:<name>`` / ``trafo:<name>``, switches
(lines declared ``switch=yes``) ``switch:<name>``.  A bus's phases are its nodes 1, 2, 3 as
"A", "B", "C".  Result voltages per bus are the phase voltage farthest from 1 pu.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import opendssdirect as dss
import pandas as pd

from derms.core.errors import NotFound, ValidationFailed
from derms.grid.model import NetworkModel
from derms.grid.powerflow import PowerFlowResult

_KM_PER_UNIT = {0: 1.0, 1: 1.609344, 2: 0.3048, 3: 1.0, 4: 1e-3, 5: 0.3048e-3, 6: 0.0254e-3, 7: 1e-5}
"""OpenDSS length-unit codes (none, mi, kft, km, m, ft, in, cm) in km."""
_PHASE = {1: "A", 2: "B", 3: "C"}


def _compile(path: Path) -> None:
    dss.Text.Command(f'compile "{path}"')
    if dss.Circuit.Name() == "":
        raise ValidationFailed([f"{path} defines no circuit"])


def _bus(name: str) -> str:
    return name.split(".")[0].lower()


def _elements(iface: object) -> list[str]:
    names = []
    ok = iface.First()  # type: ignore[attr-defined]
    while ok:
        names.append(iface.Name())  # type: ignore[attr-defined]
        ok = iface.Next()  # type: ignore[attr-defined]
    return names


def load_dss(path: str | Path) -> NetworkModel:
    """Import an OpenDSS circuit (its master ``.dss`` file) as a network model."""
    path = Path(path).resolve()
    if not path.is_file():
        raise NotFound("OpenDSS file", str(path))
    _compile(path)
    names = [b.lower() for b in dss.Circuit.AllBusNames()]
    rows = []
    for b in names:
        dss.Circuit.SetActiveBus(b)
        nodes = [n for n in dss.Bus.Nodes() if n in _PHASE]
        rows.append(
            {
                "name": b,
                "vn_kv": dss.Bus.kVBase() * math.sqrt(3),
                "x": dss.Bus.X() if dss.Bus.Coorddefined() else np.nan,
                "y": dss.Bus.Y() if dss.Bus.Coorddefined() else np.nan,
                "phases": "".join(_PHASE[n] for n in sorted(nodes)) or "ABC",
                "in_service": True,
            }
        )
    buses = pd.DataFrame(rows, index=pd.Index(names, name="id"))
    branch_rows, switch_rows = [], []
    for name in _elements(dss.Lines):
        dss.Lines.Name(name)
        bid = f"line:{name}"
        branch_rows.append(
            {
                "id": bid,
                "kind": "line",
                "name": name,
                "from_bus": _bus(dss.Lines.Bus1()),
                "to_bus": _bus(dss.Lines.Bus2()),
                "rating_ka": dss.Lines.NormAmps() / 1e3,
                "rating_mva": np.nan,
                "length_km": dss.Lines.Length() * _KM_PER_UNIT.get(dss.Lines.Units(), 1.0),
                "in_service": bool(dss.CktElement.Enabled()),
                "closed": not (dss.CktElement.IsOpen(1, 0) or dss.CktElement.IsOpen(2, 0)),
            }
        )
        if dss.Lines.IsSwitch():
            switch_rows.append(
                {
                    "id": f"switch:{name}",
                    "bus": _bus(dss.Lines.Bus1()),
                    "element": bid,
                    "et": "line",
                    "closed": branch_rows[-1]["closed"],
                }
            )
    for name in _elements(dss.Transformers):
        dss.Transformers.Name(name)
        bus_names = dss.CktElement.BusNames()
        branch_rows.append(
            {
                "id": f"trafo:{name}",
                "kind": "trafo",
                "name": name,
                "from_bus": _bus(bus_names[0]),
                "to_bus": _bus(bus_names[1]),
                "rating_ka": np.nan,
                "rating_mva": dss.Transformers.kVA() / 1e3,
                "length_km": 0.0,
                "in_service": bool(dss.CktElement.Enabled()),
                "closed": True,
            }
        )
    branches = pd.DataFrame(branch_rows).set_index("id")
    switches = pd.DataFrame(switch_rows, columns=["id", "bus", "element", "et", "closed"]).set_index("id")
    load_rows = []
    for name in _elements(dss.Loads):
        dss.Loads.Name(name)
        bus_name = dss.CktElement.BusNames()[0]
        nodes = [int(n) for n in bus_name.split(".")[1:] if n.isdigit() and int(n) in _PHASE]
        load_rows.append(
            {
                "id": f"load:{name}",
                "bus": _bus(bus_name),
                "p_w": dss.Loads.kW() * 1e3,
                "q_var": dss.Loads.kvar() * 1e3,
                "phases": "".join(_PHASE[n] for n in sorted(nodes)) or "ABC",
            }
        )
    loads = pd.DataFrame(load_rows, columns=["id", "bus", "p_w", "q_var", "phases"]).set_index("id")
    sgen_rows = []
    for name in _elements(dss.PVsystems):
        dss.PVsystems.Name(name)
        sgen_rows.append(
            {
                "id": f"pvsystem:{name}",
                "bus": _bus(dss.CktElement.BusNames()[0]),
                "p_w": dss.PVsystems.Pmpp() * 1e3,
                "q_var": 0.0,
                "kind": "PV",
            }
        )
    sgens = pd.DataFrame(sgen_rows, columns=["id", "bus", "p_w", "q_var", "kind"]).set_index("id")
    buses["has_load"] = buses.index.isin(loads["bus"])
    dss.Circuit.SetActiveElement("Vsource.source")
    model = NetworkModel(
        name=dss.Circuit.Name(),
        buses=buses,
        branches=branches,
        switches=switches,
        loads=loads,
        sgens=sgens,
        ext_grid_buses=[_bus(dss.CktElement.BusNames()[0])],
        dss_path=str(path),
        unbalanced=bool((buses["phases"] != "ABC").any()),
    )
    if model.buses["x"].isna().any():
        from derms.grid.network import schematic_layout

        schematic_layout(model)
    return model


class DssEngine:
    """Unbalanced AC power flow of a model loaded from OpenDSS.

    Extra injections per bus [W], [var] (positive into the grid) enter as constant-power
    OpenDSS generators spread evenly over the bus's phases.
    """

    def __init__(self, model: NetworkModel) -> None:
        if model.dss_path is None:
            raise ValidationFailed(["the OpenDSS engine needs a model loaded with load_dss"])
        self.model = model
        self._version = -1

    def _build(self) -> None:
        m = self.model
        _compile(Path(m.dss_path or ""))
        for bid, row in m.branches.iterrows():
            kind, name = str(bid).split(":", 1)
            element = f"{'Line' if kind == 'line' else 'Transformer'}.{name}"
            if not row["in_service"]:
                dss.Text.Command(f"disable {element}")
            elif kind == "line":
                dss.Text.Command(f"{'close' if row['closed'] else 'open'} {element} term=1")
        self.gen_names = []
        for bus, row in m.buses.iterrows():
            nodes = ".".join(str("ABC".index(p) + 1) for p in row["phases"])
            gname = f"derms_{bus}"
            kv = row["vn_kv"] if len(row["phases"]) > 1 else row["vn_kv"] / math.sqrt(3)
            dss.Text.Command(
                f"new generator.{gname} bus1={bus}.{nodes} phases={len(row['phases'])} kv={kv} kw=0 kvar=0 model=1"
            )
            self.gen_names.append(gname)
        self.branch_ids = m.branches.index
        self._version = m.topology_version

    def run(self, p_inj_w: np.ndarray | None = None, q_inj_var: np.ndarray | None = None) -> PowerFlowResult:
        """Snapshot unbalanced power flow."""
        if self._version != self.model.topology_version or dss.Circuit.Name() != self.model.name:
            self._build()
        m = self.model
        n = len(m.bus_ids)
        p = np.zeros(n) if p_inj_w is None else np.asarray(p_inj_w, float)
        q = np.zeros(n) if q_inj_var is None else np.asarray(q_inj_var, float)
        if p.shape != (n,) or q.shape != (n,) or not (np.isfinite(p).all() and np.isfinite(q).all()):
            raise ValidationFailed([f"injections must be finite arrays of shape ({n},)"])
        for g, pw, qv in zip(self.gen_names, p, q, strict=True):
            dss.Generators.Name(g)
            dss.Generators.kW(pw / 1e3)
            dss.Generators.kvar(qv / 1e3)
        dss.Solution.Solve()
        converged = bool(dss.Solution.Converged())
        vm = np.full(n, np.nan)
        for i, bus in enumerate(m.bus_ids):
            dss.Circuit.SetActiveBus(bus)
            mags = np.asarray(dss.Bus.puVmagAngle()[::2])
            if len(mags) and mags.max() > 0:
                vm[i] = mags[np.argmax(np.abs(mags - 1.0))]
        loading = np.full(len(self.branch_ids), np.nan)
        p_from = np.full(len(self.branch_ids), np.nan)
        for k, (bid, row) in enumerate(m.branches.iterrows()):
            kind, name = str(bid).split(":", 1)
            dss.Circuit.SetActiveElement(f"{'Line' if kind == 'line' else 'Transformer'}.{name}")
            if not dss.CktElement.Enabled():
                continue
            nc = dss.CktElement.NumConductors()
            powers = np.asarray(dss.CktElement.Powers()).reshape(-1, 2)
            p_from[k] = powers[:nc, 0].sum() * 1e3
            if kind == "line":
                amps = np.asarray(dss.CktElement.CurrentsMagAng()[::2])[:nc]
                loading[k] = amps.max() / (row["rating_ka"] * 1e3) * 100.0
            else:
                loading[k] = np.hypot(*powers[:nc].sum(axis=0)) / (row["rating_mva"] * 1e3) * 100.0
        subs = m.substations
        sub_p = np.array([p_from[self.branch_ids.get_loc(t)] if t else np.nan for t in subs["trafo"]])
        return PowerFlowResult(
            m.bus_ids,
            self.branch_ids,
            subs.index,
            vm,
            loading,
            p_from,
            np.asarray(dss.Circuit.Losses()[0]),
            sub_p,
            np.asarray(converged),
        )


DERMS_FEEDER = Path(__file__).with_name("data") / "derms_feeder.dss"
"""A small unbalanced 12.47 kV test feeder written for derms (see the file's header)."""
