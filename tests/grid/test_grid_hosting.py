from __future__ import annotations

import numpy as np

from derms.grid.hosting import hosting_capacity, hosting_capacity_iterative, hosting_capacity_series
from derms.grid.limits import Limits, check
from derms.grid.model import NetworkModel
from derms.grid.network import load_network
from derms.grid.powerflow import PgmEngine


def test_generation_hosting_capacity_matches_iterative_reference(oberrhein: NetworkModel) -> None:
    limits = Limits.ansi("A")
    step, top = 1e6, 20e6
    buses = ["0", "81", "196"]
    fast = hosting_capacity(PgmEngine(oberrhein), limits, buses=buses, max_w=top, step_w=step)
    assert fast.shape == (1, 3)
    for k, bus in enumerate(buses):
        ref = hosting_capacity_iterative(oberrhein, limits, bus, max_w=top, step_w=step)
        assert abs(fast[0, k] - ref) <= step, bus
    assert 0 < fast.min() < top


def test_load_hosting_capacity_matches_iterative_reference_on_lv_feeder() -> None:
    m = load_network("cigre_lv")
    limits = Limits.ansi("B")
    step, top = 10e3, 400e3
    buses = ["18", "35", "43"]
    fast = hosting_capacity(PgmEngine(m), limits, direction="load", buses=buses, max_w=top, step_w=step)
    for k, bus in enumerate(buses):
        ref = hosting_capacity_iterative(m, limits, bus, direction="load", max_w=top, step_w=step)
        assert abs(fast[0, k] - ref) <= step, bus
    assert fast.min() < top


def test_time_series_hosting_capacity_is_binned_towards_the_safe_side(oberrhein: NetworkModel) -> None:
    eng = PgmEngine(oberrhein)
    limits = Limits.ansi("A", reverse_flow=False)
    load = np.array([0.3, 0.55, 0.71, 1.0])
    kw = {"buses": ["81", "196"], "max_w": 20e6, "step_w": 500e3}
    exact = hosting_capacity(eng, limits, load_scale=load, **kw)
    binned = hosting_capacity_series(eng, limits, load, resolution=0.1, **kw)
    assert binned.shape == exact.shape == (4, 2)
    assert (binned <= exact).all()
    # with reverse flow forbidden, more load at the same bus leaves room for more generation
    assert (np.diff(exact, axis=0) >= 0).all() and exact[-1, 0] > exact[0, 0]


def test_hosting_capacity_of_every_bus_matches_a_power_flow_sweep(oberrhein: NetworkModel) -> None:
    """Every MV bus of mv_oberrhein against the plain sweep: all steps of each bus in one
    power-grid-model batch, the first step with any violation found by ``check``."""
    eng = PgmEngine(oberrhein)
    limits = Limits.ansi("A")
    step, top = 1e6, 20e6
    assert check(eng.run(), oberrhein, limits).empty  # no base violation: check() is the reference
    buses = oberrhein.bus_ids[oberrhein.buses["feeder_index"] >= 0]
    fast = hosting_capacity(eng, limits, max_w=top, step_w=step)[0]
    steps = np.arange(1, int(top / step) + 1)
    n = len(oberrhein.bus_ids)
    p = np.zeros((len(buses) * len(steps), n))
    p[np.arange(len(p)), np.repeat(oberrhein.bus_positions(buses), len(steps))] = (
        np.tile(steps, len(buses)) * step
    )
    bad = np.zeros(len(p), dtype=bool)
    bad[check(eng.run_batch(p), oberrhein, limits)["time"].to_numpy(int)] = True
    bad = bad.reshape(len(buses), len(steps))
    sweep = np.where(bad.any(axis=1), bad.argmax(axis=1), len(steps)) * step
    assert (np.abs(fast - sweep) <= step).all()
    assert 0 < np.median(fast) < top
