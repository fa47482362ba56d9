from datetime import timedelta

import numpy as np
import pytest

from derms.core import Capabilities, Der, DerKind, Site
from derms.core.columns import TelemetryColumns, to_ms
from derms.fleet import FleetState, rollup
from tests.conftest import T0


def der(i: int, kind: DerKind, w_max: float = 0.0, w_cons: float = 0.0) -> Der:
    caps = Capabilities(w_max=w_max, w_max_consume=w_cons, wh_max=10_000 if kind.is_storage else 0)
    return Der(f"d{i}", f"s{i}", kind, caps, "sim", str(i), "t1")


def fleet() -> FleetState:
    state = FleetState(capacity=2)  # grows as needed
    items = [
        (0, der(0, DerKind.HOME_BATTERY, 5000, 5000), Site("s0", "c", "t1", feeder_id="f1")),
        (1, der(1, DerKind.PV_INVERTER, 7000), Site("s1", "c", "t1", feeder_id="f1")),
        (2, der(2, DerKind.EV_CHARGER, 0, 7200), Site("s2", "c", "t1", feeder_id="f2")),
        (3, der(3, DerKind.HOME_BATTERY, 5000, 5000), Site("s3", "c", "t1", feeder_id="f2")),
        (4, der(4, DerKind.THERMOSTAT, 0, 3000), None),
    ]
    state.register(items)
    return state


def sample(rows: list[int], p: list[float], soc: list[float], ts=T0, available=None) -> TelemetryColumns:
    n = len(rows)
    return TelemetryColumns.from_arrays(
        np.array(rows),
        np.full(n, to_ms(ts)),
        p_w=np.array(p),
        soc=np.array(soc),
        available=np.ones(n, bool) if available is None else np.array(available),
    )


def test_flexibility_by_kind_and_state() -> None:
    state = fleet()
    state.apply_telemetry(
        sample([0, 1, 2, 3, 4], [1000, 4000, -7000, 0, -2000], [0.5, np.nan, np.nan, 0.01, np.nan])
    )
    up, down = state.flexibility()
    # battery at 50%: up to +5000 from +1000, down to -5000; PV curtails only; EV sheds;
    # battery at 1% SoC cannot discharge; thermostat can shed 2000 or draw 1000 more.
    assert up[:5].tolist() == [4000, 0, 7000, 0, 2000]
    assert down[:5].tolist() == [6000, 4000, 200, 5000, 1000]
    assert up[5:].sum() == 0  # spare capacity rows hold no DER


def test_offline_unavailable_and_stale_devices_offer_nothing() -> None:
    state = fleet()
    state.apply_telemetry(
        sample([0, 1, 2, 3, 4], [0] * 5, [0.5] * 5, available=[True, True, False, True, True])
    )
    state.set_online("d0", False)
    stale = state.mark_stale(to_ms(T0 + timedelta(minutes=10)), timeout_s=300)
    assert stale.tolist() == [1, 2, 3, 4]  # reported but not heard from since
    up, down = state.flexibility()
    assert up.sum() == 0 and down.sum() == 0


def test_older_samples_do_not_overwrite_and_nan_keeps_value() -> None:
    state = fleet()
    state.apply_telemetry(sample([0], [1500], [0.6], ts=T0 + timedelta(seconds=10)))
    state.apply_telemetry(sample([0], [-999], [0.1], ts=T0))
    assert state.p_w[0] == 1500 and state.soc[0] == 0.6
    state.apply_telemetry(sample([0], [1200], [np.nan], ts=T0 + timedelta(seconds=20)))
    assert state.p_w[0] == 1200 and state.soc[0] == 0.6


def test_rollup_matches_per_device_sums() -> None:
    state = fleet()
    state.apply_telemetry(sample([0, 1, 2, 3], [1000, 4000, -7000, 0], [0.5, np.nan, np.nan, 0.5]))
    r = rollup(state)
    by_id = {rec["feeder_id"]: rec for rec in r.records()}
    assert by_id["f1"]["p_w"] == 5000 and by_id["f2"]["p_w"] == -7000
    assert by_id[None]["ders"] == 1 and by_id[None]["online"] == 0
    up, down = state.flexibility()
    assert r.fleet()["flex_down_w"] == pytest.approx(down.sum())
    assert r.fleet()["flex_up_w"] == pytest.approx(up.sum())
    assert r.fleet()["online"] == 4 and r.fleet()["offline"] == 1
    only_f2 = rollup(state, mask=state.feeder == state.feeder_position("f2"))
    assert only_f2.fleet()["ders"] == 2


def test_switch_moves_der_to_other_feeder() -> None:
    state = fleet()
    state.set_feeders([1], ["f2"])
    assert state.feeder_ids[state.feeder[1]] == "f2"
    assert rollup(state).records()[1]["ders"] == 3
