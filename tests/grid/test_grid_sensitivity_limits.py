from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from derms.grid.limits import ANSI_C84_1, AnsiRange, Limits, check
from derms.grid.model import NetworkModel
from derms.grid.powerflow import PgmEngine
from derms.grid.sensitivity import sensitivities


def test_sensitivities_predict_a_small_injection(oberrhein: NetworkModel) -> None:
    eng = PgmEngine(oberrhein)
    s = sensitivities(eng)
    n = len(oberrhein.bus_ids)
    assert s.dv_dp.shape == (n, n) and s.dloading_dp.shape == (len(s.base.branch_ids), n)
    rng = np.random.default_rng(3)
    loads = oberrhein.bus_positions(oberrhein.buses.index[oberrhein.buses["has_load"]])
    dp = np.zeros(n)
    dq = np.zeros(n)
    dp[rng.choice(loads, 10)] = 200e3
    dq[rng.choice(loads, 10)] = -100e3
    after = eng.run(dp, dq)
    v_lin = s.base.vm_pu + s.dv_dp @ (dp / 1e6) + s.dv_dq @ (dq / 1e6)
    np.testing.assert_allclose(after.vm_pu, v_lin, atol=2e-4, equal_nan=True)
    l_lin = s.base.loading_pct + s.dloading_dp @ (dp / 1e6) + s.dloading_dq @ (dq / 1e6)
    err = np.abs(after.loading_pct - l_lin)
    assert np.quantile(err, 0.95) < 0.1 and err.max() < 3.0  # |I| bends where a flow reverses
    sub_lin = s.base.substation_p_w + s.dsub_dp @ dp + s.dsub_dq @ dq
    np.testing.assert_allclose(after.substation_p_w, sub_lin, rtol=1e-3)
    # injecting at a bus raises its own voltage and lowers what its substation imports
    j = loads[0]
    sub = oberrhein.substations.index.get_loc(oberrhein.buses["substation_id"].iloc[j])
    assert s.dv_dp[j, j] > 0 and s.dsub_dp[sub, j] < -0.95


def test_linear_constraints_hold_at_the_operating_point_and_per_der(oberrhein: NetworkModel) -> None:
    s = sensitivities(PgmEngine(oberrhein))
    limits = Limits.ansi("A", reverse_flow=False)
    a, b = s.constraints(oberrhein, limits)
    assert a.shape == (len(b), 2 * len(oberrhein.bus_ids))
    assert (b >= 0).all()  # the shipped operating point is within Range A
    der_bus = np.array(oberrhein.buses.index[oberrhein.buses["has_load"]][:5].tolist() * 2)
    a_der, b_der = s.constraints(oberrhein, limits, oberrhein.incidence(der_bus))
    assert a_der.shape == (len(b), 2 * len(der_bus))
    np.testing.assert_array_equal(b_der, b)
    np.testing.assert_allclose(a_der[:, 0], a[:, oberrhein.bus_positions(der_bus[:1])[0]])


def test_ansi_ranges_follow_c84_1() -> None:
    assert ANSI_C84_1[(AnsiRange.A, "lv")].upper_pu == 1.05
    assert ANSI_C84_1[(AnsiRange.B, "mv")].lower_pu == 0.95
    with pytest.raises(ValueError):
        Limits.ansi("C")


def test_violation_report_names_element_magnitude_and_time(cigre_mv: NetworkModel) -> None:
    eng = PgmEngine(cigre_mv)
    n = len(cigre_mv.bus_ids)
    p = np.zeros((3, n))
    far = cigre_mv.bus_positions(["11"])[0]
    p[1, far] = 8e6  # a large generator at the end of the feeder
    t0 = datetime(2026, 7, 1, 12, tzinfo=UTC)
    times = pd.date_range(t0, periods=3, freq="15min")
    res = eng.run_batch(p, load_scale=np.array([1.0, 0.3, 1.0]))
    report = check(res, cigre_mv, Limits.ansi("A", reverse_flow=False), times)
    # at full load the shipped feeder sags below Range A's 0.975 pu MV floor, not below Range B's
    assert set(report.loc[report["time"] != times[1], "kind"]) == {"undervoltage"}
    over = report[report["kind"] == "overvoltage"]
    assert "11" in set(over["element"])
    row = over[over["element"] == "11"].iloc[0]
    assert row["value"] > 1.05 and row["magnitude"] == pytest.approx(row["value"] - 1.05)
    assert set(report["kind"]) >= {"overvoltage", "thermal", "reverse_flow"}
    relaxed = check(res, cigre_mv, Limits.ansi("B", max_loading_pct=1000.0), times)
    assert "thermal" not in set(relaxed["kind"]) and len(relaxed) < len(report)
