from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from derms.core.errors import ValidationFailed
from derms.grid.model import NetworkModel
from derms.grid.network import load_network
from derms.grid.powerflow import PgmEngine, run_pandapower

Injections = Callable[..., np.ndarray]


@pytest.mark.parametrize(
    ("name", "kw_per_bus"),
    [
        ("mv_oberrhein", 400.0),
        ("cigre_mv", 1500.0),
        ("cigre_lv", 15.0),
        ("kerber_landnetz_kabel", 8.0),
        ("ieee_european_lv", 3.0),
    ],
)
def test_power_grid_model_agrees_with_pandapower(
    name: str, kw_per_bus: float, injections: Injections, request: pytest.FixtureRequest
) -> None:
    m = request.getfixturevalue("oberrhein") if name == "mv_oberrhein" else load_network(name)
    p = injections(m, kw_per_bus)
    q = -0.2 * p
    fast = PgmEngine(m).run(p, q)
    ref = run_pandapower(m, p, q)
    assert fast.converged and ref.converged
    np.testing.assert_allclose(fast.vm_pu, ref.vm_pu, atol=1e-3)
    np.testing.assert_allclose(fast.loading_pct, ref.loading_pct, atol=0.1)
    np.testing.assert_allclose(fast.substation_p_w, ref.substation_p_w, rtol=1e-3)
    assert fast.losses_w == pytest.approx(ref.losses_w, rel=1e-2)


def test_batch_equals_snapshots_and_flags_reverse_flow(
    oberrhein: NetworkModel, injections: Injections
) -> None:
    eng = PgmEngine(oberrhein)
    p = injections(oberrhein, 300.0)
    scale = np.array([0.0, 1.0, 3.0])
    batch = eng.run_batch(scale[:, None] * p, load_scale=np.array([1.0, 0.8, 0.5]))
    assert batch.vm_pu.shape == (3, len(oberrhein.bus_ids))
    for k in range(3):
        snap = eng.run(scale[k] * p, load_scale=[1.0, 0.8, 0.5][k])
        np.testing.assert_allclose(batch.vm_pu[k], snap.vm_pu, atol=1e-9, equal_nan=True)
    assert not batch.reverse_flow[0].any()
    assert batch.reverse_flow[2].all()
    ref = run_pandapower(oberrhein, 3.0 * p, load_scale=0.5)
    np.testing.assert_allclose(batch.vm_pu[2], ref.vm_pu, atol=1e-3)


def test_batch_reports_unconverged_steps_instead_of_failing(cigre_mv: NetworkModel) -> None:
    eng = PgmEngine(cigre_mv)
    res = eng.run_batch(load_scale=np.array([1.0, 60.0, 1.0]))
    assert res.converged.tolist() == [True, False, True]
    assert np.isnan(res.vm_pu[1]).all() and np.isfinite(res.vm_pu[[0, 2]]).all()


def test_switching_changes_power_flow_results(
    oberrhein: NetworkModel, injections: Injections, move_across_tie: Callable[[NetworkModel], str]
) -> None:
    eng = PgmEngine(oberrhein)
    p = injections(oberrhein, 300.0)
    before = eng.run(p)
    bus = move_across_tie(oberrhein)
    after = eng.run(p)
    ref = run_pandapower(oberrhein, p)
    i = oberrhein.bus_positions([bus])[0]
    assert abs(after.vm_pu[i] - before.vm_pu[i]) > 1e-4
    assert not np.allclose(after.substation_p_w, before.substation_p_w)
    np.testing.assert_allclose(after.vm_pu, ref.vm_pu, atol=1e-3, equal_nan=True)


def test_bad_injection_shape_is_rejected(cigre_mv: NetworkModel) -> None:
    with pytest.raises(ValidationFailed):
        PgmEngine(cigre_mv).run(np.zeros(3))
    with pytest.raises(ValidationFailed):
        PgmEngine(cigre_mv).run(np.full(15, np.nan))


def test_parts_joined_only_by_external_grids_solve_alone_to_the_same_voltages(
    oberrhein: NetworkModel, injections: Callable[..., np.ndarray]
) -> None:
    eng = PgmEngine(oberrhein)
    parts = eng.islands()
    assert len(parts) == 2 and eng.islands() is parts  # one per HV/MV substation, cached
    p = injections(oberrhein, 300.0)
    full = eng.run(p)
    for part, pos in parts:
        fed = part.model.buses["feeder_index"].to_numpy() >= 0
        alone = part.run(p[pos])
        np.testing.assert_allclose(alone.vm_pu[fed], full.vm_pu[pos[fed]], atol=1e-9)
    covered = np.concatenate([pos[part.model.buses["feeder_index"].to_numpy() >= 0] for part, pos in parts])
    assert sorted(covered) == sorted(np.flatnonzero(oberrhein.buses["feeder_index"] >= 0))
