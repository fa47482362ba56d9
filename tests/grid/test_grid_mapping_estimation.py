from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from power_grid_model import ComponentType

from derms.core.errors import ValidationFailed
from derms.grid.estimation import estimate_state
from derms.grid.mapping import attachment_buses, nearest_bus, spread_ders
from derms.grid.model import NetworkModel
from derms.grid.powerflow import PgmEngine


def test_two_thousand_ders_spread_over_load_buses_with_feeder_index(oberrhein: NetworkModel) -> None:
    att = attachment_buses(oberrhein)
    assert len(att) == 147 and (att["load_w"] > 0).all() and (att["feeder_index"] >= 0).all()
    der_bus = spread_ders(oberrhein, 2000, seed=1)
    assert len(der_bus) == 2000 and set(der_bus) == set(att.index)
    np.testing.assert_array_equal(der_bus, spread_ders(oberrhein, 2000, seed=1))
    fidx = oberrhein.feeder_index(der_bus)
    assert fidx.dtype.kind == "i" and set(fidx) == set(range(len(oberrhein.feeders)))
    assert np.bincount(fidx).min() > 300


def test_nearest_bus_maps_site_coordinates(oberrhein: NetworkModel) -> None:
    att = attachment_buses(oberrhein)
    picked = att.iloc[[3, 40, 100]]
    got = nearest_bus(oberrhein, picked["x"].to_numpy() + 1e-5, picked["y"].to_numpy() - 1e-5)
    assert got.tolist() == picked.index.tolist()
    with pytest.raises(ValidationFailed):
        nearest_bus(oberrhein, np.array([np.nan]), np.array([0.0]))


def true_injections(eng: PgmEngine, p: np.ndarray, load_scale: float) -> tuple[np.ndarray, np.ndarray]:
    out = eng.pgm.calculate_power_flow(
        update_data=eng._update(p[None], None, np.array([load_scale]), None, 1),
        output_component_types={ComponentType.node: ["p", "q"]},
    )
    pos = pd.Index(eng.data[ComponentType.node]["id"]).get_indexer(eng.node_id)
    return out[ComponentType.node]["p"][0][pos], out[ComponentType.node]["q"][0][pos]


def test_state_estimate_improves_with_meters_and_matches_power_flow_when_fully_metered(
    oberrhein: NetworkModel,
) -> None:
    eng = PgmEngine(oberrhein)
    rng = np.random.default_rng(11)
    n = len(oberrhein.bus_ids)
    has = oberrhein.buses["has_load"].to_numpy()
    p = np.zeros(n)
    p[has] = rng.uniform(0, 400e3, has.sum())  # unknown DER output the pseudo-measurements miss
    truth = eng.run(p, load_scale=0.8)
    tp, tq = true_injections(eng, p, 0.8)
    errors = []
    for frac in (0.0, 0.5, 1.0):
        met = oberrhein.bus_ids[has][: int(frac * has.sum())]
        pos = oberrhein.bus_positions(met)
        se = estimate_state(
            eng, p_w=pd.Series(tp[pos], index=met), q_var=pd.Series(tq[pos], index=met), load_scale=0.8
        )
        assert se.metered.sum() == len(met)
        errors.append(np.nanmax(np.abs(se.vm_pu - truth.vm_pu)))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-4


def test_state_estimation_rejects_bad_telemetry(oberrhein: NetworkModel) -> None:
    eng = PgmEngine(oberrhein)
    with pytest.raises(ValidationFailed):
        estimate_state(eng, p_w=pd.Series([np.nan], index=["3"]), q_var=pd.Series([0.0], index=["3"]))
