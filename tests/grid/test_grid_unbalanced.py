from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from power_grid_model import CalculationMethod

from derms.core.errors import ValidationFailed
from derms.grid.limits import PHASE_VIOLATION_COLUMNS, Limits, check, check_phases
from derms.grid.model import NetworkModel
from derms.grid.network import load_network
from derms.grid.powerflow import PgmEngine
from derms.grid.unbalanced import PgmAsymEngine, phase_injections, run_pandapower_3ph


@pytest.fixture(scope="module")
def lv() -> NetworkModel:
    """The IEEE European LV feeder, loaded once for the module (about 5 s); tests only read it."""
    return load_network("ieee_european_lv")


@pytest.fixture(scope="module")
def eng(lv: NetworkModel) -> PgmAsymEngine:
    return PgmAsymEngine(lv)


def test_asymmetric_power_flow_matches_runpp_3ph_and_a_single_phase_der_raises_its_phase(
    lv: NetworkModel, eng: PgmAsymEngine
) -> None:
    m = lv
    single = m.buses.index[m.buses["phases"].isin(["A", "B", "C"])]
    # rooftop PV on the single-phase load buses, on each one's own phase, plus one 20 kW unit
    # on phase B at the last bus of the feeder
    far = str(m.buses.index[-1])
    ders = [*single, far]
    phases = [*m.buses.loc[single, "phases"], "B"]
    kw = np.r_[np.full(len(single), 3e3), 20e3]
    p = phase_injections(m, ders, phases, kw)
    assert p.shape == (len(m.bus_ids), 3) and p.sum() == pytest.approx(kw.sum())
    for inj in (None, p):  # the shipped peak load alone, then with the PV exporting
        fast, ref = eng.run(inj), run_pandapower_3ph(m, inj)
        assert fast.converged and ref.converged
        assert np.nanmax(np.abs(fast.vm_pu - ref.vm_pu)) < 1e-3
        assert np.isfinite(fast.vm_pu[1:]).all()
        assert fast.loading_pct.shape == (len(m.branches), 3)
        np.testing.assert_allclose(fast.loading_pct, ref.loading_pct, atol=0.05)  # % points
        np.testing.assert_allclose(fast.i_from_a, ref.i_from_a, atol=0.2)
        np.testing.assert_allclose(fast.i_to_a, ref.i_to_a, atol=0.2)
        np.testing.assert_allclose(fast.p_from_w, ref.p_from_w, atol=30.0)
        np.testing.assert_allclose(fast.substation_p_w, ref.substation_p_w, atol=30.0)
        assert fast.losses_w == pytest.approx(float(ref.losses_w), rel=5e-3)
    # the PV turns every phase of the substation into export
    assert fast.reverse_flow.all() and not eng.run().reverse_flow.any()
    # the unit on phase B raises phase B at its bus more than A and C
    without = eng.run(p - phase_injections(m, [far], ["B"], [20e3]))
    j = m.bus_positions([far])[0]
    rise = fast.vm_pu[j] - without.vm_pu[j]
    assert rise[1] > 0.005 and rise[1] > rise[0] and rise[1] > rise[2]
    # and the current on phase B of the cable into that bus
    into = m.branches.index.get_loc(m.branches.index[m.branches["to_bus"] == far][0])
    di = fast.i_to_a[into] - without.i_to_a[into]
    assert di[1] > 50.0 and abs(di[0]) < 5.0 and abs(di[2]) < 5.0


def test_batch_time_series_equals_one_by_one(lv: NetworkModel) -> None:
    m = lv
    eng = PgmAsymEngine(m, chunk_steps=3)  # 5 steps: two chunks
    rng = np.random.default_rng(12)
    steps = 5
    load_scale = rng.uniform(0.2, 1.5, (steps, len(m.loads)))
    single = m.buses.index[m.buses["phases"].isin(["A", "B", "C"])]
    pv = phase_injections(m, single, m.buses.loc[single, "phases"], rng.uniform(0, 4e3, (steps, len(single))))
    q = -0.2 * pv
    batch = eng.run_batch(pv, q, load_scale=load_scale)
    assert batch.converged.all() and batch.loading_pct.shape == (steps, len(m.branches), 3)
    for k in range(steps):
        one = eng.run(pv[k], q[k], load_scale=load_scale[k])
        for f in ("vm_pu", "loading_pct", "i_from_a", "p_from_w", "substation_p_w", "losses_w"):
            np.testing.assert_allclose(getattr(batch, f)[k], getattr(one, f), rtol=1e-9, atol=1e-9, err_msg=f)
    # the iterative-current method reaches the same fixed point
    ic = eng.run_batch(pv, q, load_scale=load_scale, method=CalculationMethod.iterative_current)
    np.testing.assert_allclose(ic.vm_pu, batch.vm_pu, atol=1e-6)
    np.testing.assert_allclose(ic.loading_pct, batch.loading_pct, atol=1e-3)
    # a (steps,) profile scales every load alike; load scaling moves the substation's draw
    prof = eng.run_batch(load_scale=np.array([0.5, 1.0]))
    assert (prof.substation_p_w[0] < prof.substation_p_w[1]).all()
    with pytest.raises(ValidationFailed):
        eng.run_batch(load_scale=np.ones((2, 3)))


def test_phase_violations_are_reported_with_their_phase(lv: NetworkModel, eng: PgmAsymEngine) -> None:
    m = lv
    # 3 kW of PV on every phase-C load bus, at the second of two quarter hours
    c = m.buses.index[m.buses["phases"] == "C"]
    pv = phase_injections(m, c, ["C"] * len(c), np.full(len(c), 3e3))
    times = pd.date_range(datetime(2026, 7, 1, 12, tzinfo=UTC), periods=2, freq="15min")
    res = eng.run_batch(np.stack([np.zeros_like(pv), pv]))
    limits = Limits.ansi("A", max_loading_pct=25.0, reverse_flow=False)
    report = check_phases(res, m, limits, times)
    assert tuple(report.columns) == PHASE_VIOLATION_COLUMNS
    # the balanced model of the shipped peak sees nothing wrong ...
    assert check(PgmEngine(m).run(), m, limits).empty
    # ... per phase, the lightly loaded phase C rises above Range A (neutral shift) and
    # phase B of the first cables carries more than 25 % of their rating
    base = report[report["time"] == times[0]]
    assert set(zip(base["kind"], base["phase"], strict=True)) == {("overvoltage", "C"), ("thermal", "B")}
    head = base[base["element"] == "line:0"].iloc[0]
    assert head["value"] == pytest.approx(res.loading_pct[0, 0, 1])
    assert head["magnitude"] == pytest.approx(head["value"] - 25.0)
    # with the PV, phase C of the substation exports while A and B still import
    rf = report[report["kind"] == "reverse_flow"]
    assert list(zip(rf["time"], rf["element"], rf["phase"], strict=True)) == [(times[1], "S0", "C")]
    assert rf["value"].iloc[0] < -10e3 and rf["magnitude"].iloc[0] == pytest.approx(-rf["value"].iloc[0])
    assert (res.substation_p_w[1, 0, :2] > 0).all()
    later = report[(report["time"] == times[1]) & (report["kind"] == "thermal")]
    assert set(later["phase"]) == {"B", "C"}
    over = report[report["kind"] == "overvoltage"]
    assert (over["value"] > over["limit"]).all() and (over["phase"] == "C").all()
    # phase C at the far end is above even Range B's 1.058 pu at peak load; the PV spreads it
    relaxed = check_phases(res, m, Limits.ansi("B", max_loading_pct=100.0), times)
    assert set(zip(relaxed["kind"], relaxed["phase"], strict=True)) == {("overvoltage", "C")}
    assert (relaxed["time"] == times[1]).sum() > (relaxed["time"] == times[0]).sum() > 0


def test_batch_of_phase_scenarios_and_bad_phases(lv: NetworkModel, eng: PgmAsymEngine) -> None:
    m = lv
    bus = m.buses.index[-1]
    p = np.stack([phase_injections(m, [bus], [ph], [10e3]) for ph in ("A", "B", "C", "ABC")])
    res = eng.run_batch(p)
    j = m.bus_positions([bus])[0]
    assert res.vm_pu.shape == (4, len(m.bus_ids), 3) and res.converged.all()
    # each single-phase scenario lifts its own phase most
    assert [int(np.argmax(res.vm_pu[k, j] - res.vm_pu[3, j])) for k in range(3)] == [0, 1, 2]
    with pytest.raises(ValidationFailed):
        phase_injections(m, [bus], ["AD"], [1e3])
    with pytest.raises(ValidationFailed):
        eng.run_batch(np.zeros((2, 3, 3)))


def test_a_step_that_does_not_converge_is_flagged_and_reported(lv: NetworkModel, eng: PgmAsymEngine) -> None:
    m = lv
    # 300 kW on one phase at the end of the LV feeder: no power flow solution
    p = np.stack([np.zeros((len(m.bus_ids), 3)), phase_injections(m, [m.buses.index[-1]], ["B"], [300e3])])
    res = eng.run_batch(p)
    assert res.converged.tolist() == [True, False]
    assert np.isfinite(res.loading_pct[0]).all() and np.isnan(res.loading_pct[1]).all()
    assert np.isnan(res.losses_w[1]) and np.isnan(res.substation_p_w[1]).all()
    report = check_phases(res, m, Limits.ansi("B", max_loading_pct=100.0), ["peak", "failed"])
    failed = report[report["time"] == "failed"]
    assert failed[["kind", "element", "phase"]].values.tolist() == [["not_converged", m.name, ""]]
