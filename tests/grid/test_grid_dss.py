from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from derms.core.errors import NotFound, ValidationFailed
from derms.grid.dss import DERMS_FEEDER, DssEngine, load_dss
from derms.grid.limits import Limits, check


def test_opendss_feeder_imports_with_phases_switches_and_feeders() -> None:
    m = load_dss(DERMS_FEEDER)
    assert m.unbalanced and m.net is None
    assert m.buses.loc["a2", "phases"] == "A" and m.buses.loc["b1", "phases"] == "BC"
    assert m.buses.loc["n3", "vn_kv"] == pytest.approx(12.47)
    assert m.substations.loc["S0", "trafo"] == "trafo:sub"
    assert m.feeders.loc["F0", "n_buses"] == 9 and m.feeder_of_bus("source_hv") is None
    assert not m.switches.loc["switch:tie", "closed"]
    assert m.branches.loc["line:l1", "length_km"] == pytest.approx(0.8 * 1.609344)


def test_opendss_unbalanced_power_flow_responds_to_a_single_phase_injection() -> None:
    m = load_dss(DERMS_FEEDER)
    eng = DssEngine(m)
    base = eng.run()
    assert base.converged and np.isfinite(base.vm_pu).all()
    assert base.substation_p_w[0] > 4e6  # the feeder's loads, less its PV, plus losses
    a2 = m.bus_positions(["a2"])[0]
    p = np.zeros(len(m.bus_ids))
    p[a2] = 300e3
    after = eng.run(p)
    assert after.vm_pu[a2] - base.vm_pu[a2] > 0.005
    assert base.substation_p_w[0] - after.substation_p_w[0] == pytest.approx(300e3, rel=0.05)
    report = check(base, m, Limits.ansi("A"))
    assert set(report["kind"]) == {"undervoltage"}  # the end of this loaded feeder sags below 0.975 pu


def test_closing_the_tie_changes_the_opendss_solution() -> None:
    m = load_dss(DERMS_FEEDER)
    eng = DssEngine(m)
    radial = eng.run()
    m.set_switch("switch:tie", True)
    looped = eng.run()
    n5 = m.bus_positions(["n5"])[0]
    assert looped.vm_pu[n5] > radial.vm_pu[n5] + 1e-3
    m.set_switch("switch:tie", False)
    np.testing.assert_allclose(eng.run().vm_pu, radial.vm_pu, atol=1e-9)


def test_bad_dss_input_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        load_dss(tmp_path / "missing.dss")
    eng = DssEngine(load_dss(DERMS_FEEDER))
    with pytest.raises(ValidationFailed):
        eng.run(np.zeros(2))
