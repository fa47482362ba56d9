"""Shared fixtures: the real pandapower-shipped feeders, loaded once per session."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from derms.grid.model import NetworkModel
from derms.grid.network import load_network


@pytest.fixture(scope="session")
def _oberrhein() -> NetworkModel:
    return load_network("mv_oberrhein")


@pytest.fixture
def oberrhein(_oberrhein: NetworkModel) -> NetworkModel:
    """mv_oberrhein as shipped (load scaling 0.6, its own PV off): a fresh copy per test."""
    return _oberrhein.copy()


@pytest.fixture(scope="session")
def cigre_mv() -> NetworkModel:
    return load_network("cigre_mv")


def tie_switch(m: NetworkModel) -> tuple[str, str, str]:
    """An open line switch whose line joins two feeders: (switch, bus at switch, far bus)."""
    for sid, sw in m.switches[~m.switches["closed"]].iterrows():
        line = m.branches.loc[sw["element"]]
        far = line["to_bus"] if line["from_bus"] == sw["bus"] else line["from_bus"]
        near, other = m.feeder_of_bus(sw["bus"]), m.feeder_of_bus(far)
        if near and other and near != other:
            return str(sid), str(sw["bus"]), str(far)
    raise AssertionError("no tie switch between two feeders")


def move_bus_across_tie(m: NetworkModel) -> str:
    """Close the tie and open every other switch around the bus at the tie: it changes feeder."""
    sid, bus, _ = tie_switch(m)
    m.set_switch(sid, True)
    tie_line = m.switches.loc[sid, "element"]
    around = m.switches[(m.switches["bus"] == bus) & (m.switches["element"] != tie_line)]
    for other in around.index:
        m.set_switch(str(other), False)
    return bus


def der_injections(m: NetworkModel, kw_per_bus: float, seed: int = 7) -> np.ndarray:
    """Random PV-like injections [W] on every bus that carries load."""
    rng = np.random.default_rng(seed)
    p = np.zeros(len(m.bus_ids))
    has = m.buses["has_load"].to_numpy()
    p[has] = rng.uniform(0.2, 1.0, has.sum()) * kw_per_bus * 1e3
    return p


@pytest.fixture
def tie() -> Callable[[NetworkModel], tuple[str, str, str]]:
    return tie_switch


@pytest.fixture
def move_across_tie() -> Callable[[NetworkModel], str]:
    return move_bus_across_tie


@pytest.fixture
def injections() -> Callable[..., np.ndarray]:
    return der_injections
