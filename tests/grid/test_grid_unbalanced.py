from __future__ import annotations

import numpy as np
import pytest

from derms.core.errors import ValidationFailed
from derms.grid.network import load_network
from derms.grid.unbalanced import PgmAsymEngine, phase_injections, run_pandapower_3ph


@pytest.mark.slow
def test_asymmetric_power_flow_matches_runpp_3ph_and_a_single_phase_der_raises_its_phase() -> None:
    m = load_network("ieee_european_lv")
    eng = PgmAsymEngine(m)
    single = m.buses.index[m.buses["phases"].isin(["A", "B", "C"])]
    # rooftop PV on the single-phase load buses, on each one's own phase, plus one 20 kW unit
    # on phase B at the last bus of the feeder
    far = str(m.buses.index[-1])
    ders = [*single, far]
    phases = [*m.buses.loc[single, "phases"], "B"]
    kw = np.r_[np.full(len(single), 3e3), 20e3]
    p = phase_injections(m, ders, phases, kw)
    assert p.shape == (len(m.bus_ids), 3) and p.sum() == pytest.approx(kw.sum())
    fast, ref = eng.run(p), run_pandapower_3ph(m, p)
    assert fast.converged and ref.converged
    assert np.nanmax(np.abs(fast.vm_pu - ref.vm_pu)) < 1e-3
    assert np.isfinite(fast.vm_pu[1:]).all()
    # the unit on phase B raises phase B at its bus more than A and C
    without = eng.run(p - phase_injections(m, [far], ["B"], [20e3]))
    rise = fast.vm_pu[m.bus_positions([far])[0]] - without.vm_pu[m.bus_positions([far])[0]]
    assert rise[1] > 0.005 and rise[1] > rise[0] and rise[1] > rise[2]


def test_batch_of_phase_scenarios_and_bad_phases() -> None:
    m = load_network("ieee_european_lv")
    eng = PgmAsymEngine(m)
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
