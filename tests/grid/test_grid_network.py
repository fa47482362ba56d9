from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from derms.core.errors import NotFound
from derms.grid.model import NetworkModel, PlannedOutage
from derms.grid.network import load_network


@pytest.mark.parametrize(
    ("name", "n_bus", "n_feeders"),
    [
        ("cigre_mv", 15, 2),
        ("cigre_lv", 44, 3),
        ("kerber_landnetz_kabel", 18, 2),
        ("ieee_european_lv", 907, 1),
    ],
)
def test_shipped_networks_load_with_traced_feeders(name: str, n_bus: int, n_feeders: int) -> None:
    m = load_network(name)
    assert len(m.buses) == n_bus
    assert len(m.feeders) == n_feeders
    assert m.feeders["n_buses"].sum() == (m.buses["feeder_index"] >= 0).sum()
    assert np.isfinite(m.buses[["x", "y"]].to_numpy()).all()
    assert m.buses.index.map(type).unique().tolist() == [str]


def test_ieee_european_lv_is_unbalanced_with_single_phase_buses() -> None:
    m = load_network("ieee_european_lv")
    assert m.unbalanced
    assert set(m.buses["phases"]) >= {"A", "B", "C", "ABC"}


def test_mv_oberrhein_traces_one_feeder_per_outgoing_bay(oberrhein: NetworkModel) -> None:
    # each HV/MV substation busbar has two outgoing lines; the normally-open switches end them
    f = oberrhein.feeders
    assert sorted(f["n_buses"]) == [32, 37, 45, 63]
    assert f.groupby("substation_id").size().to_dict() == {"S0": 2, "S1": 2}
    for fid, row in f.iterrows():
        head = oberrhein.branches.loc[row["head"]]
        assert row["source_bus"] in (head["from_bus"], head["to_bus"])
        assert row["bus_ids"] == oberrhein.feeder_buses(str(fid))
    # the busbar counts with its substation's first feeder; the HV buses belong to no feeder
    assert oberrhein.feeder_of_bus(f.loc["F0", "source_bus"]) == "F0"
    hv = oberrhein.buses[oberrhein.buses["vn_kv"] > 100]
    assert (hv["feeder_index"] == -1).all() and (oberrhein.buses["feeder_index"] >= 0).sum() == 177
    assert oberrhein.substations["trafo"].str.startswith("trafo:").all()
    # five of the six normally-open switches join two feeders (one of them across substations)
    ends = [
        {oberrhein.feeder_of_bus(line["from_bus"]), oberrhein.feeder_of_bus(line["to_bus"])}
        for line in oberrhein.branches.loc[
            oberrhein.switches.loc[~oberrhein.switches["closed"], "element"]
        ].to_dict("records")
    ]
    ties = [e for e in ends if len(e) == 2]
    assert len(ties) == 5 and {"F0", "F1", "F2", "F3"} == set().union(*ties)
    assert any(len({oberrhein.feeders.loc[f, "substation_id"] for f in e}) == 2 for e in ties)
    assert oberrhein.loads["p_w"].sum() == pytest.approx(oberrhein.net.load.p_mw.sum() * 0.6e6)


def test_switch_operation_moves_bus_and_its_ders_to_the_other_feeder(
    oberrhein: NetworkModel,
    tie: Callable[[NetworkModel], tuple[str, str, str]],
    move_across_tie: Callable[[NetworkModel], str],
) -> None:
    _, bus, far = tie(oberrhein)
    before = oberrhein.feeder_of_bus(bus)
    der_bus = np.array([bus, bus, far])
    idx_before = oberrhein.feeder_index(der_bus)
    version = oberrhein.topology_version
    move_across_tie(oberrhein)
    after = oberrhein.feeder_of_bus(bus)
    assert after == oberrhein.feeder_of_bus(far) != before
    assert oberrhein.topology_version > version
    idx_after = oberrhein.feeder_index(der_bus)
    assert (idx_after[:2] != idx_before[:2]).all()
    assert idx_after[2] == idx_before[2]


def test_planned_outage_retraces_only_while_active(oberrhein: NetworkModel) -> None:
    sub_line = oberrhein.feeders.loc["F0", "head"]
    t0 = datetime(2026, 6, 1, 8, tzinfo=UTC)
    outage = PlannedOutage(sub_line, t0, t0 + timedelta(hours=4), "cable repair")
    during = oberrhein.at(t0 + timedelta(hours=1), [outage])
    after = oberrhein.at(t0 + timedelta(hours=5), [outage])
    assert during.feeders.loc["F0", "n_buses"] < oberrhein.feeders.loc["F0", "n_buses"]
    assert (during.buses["feeder_index"] == -1).sum() > 2
    assert during.feeder_ids == oberrhein.feeder_ids  # the bay stays a feeder, just de-energised
    assert after.feeders["n_buses"].tolist() == oberrhein.feeders["n_buses"].tolist()
    assert oberrhein.branches.loc[sub_line, "in_service"]


def test_unknown_ids_raise_not_found(oberrhein: NetworkModel) -> None:
    with pytest.raises(NotFound):
        oberrhein.feeder_of_bus("no-such-bus")
    with pytest.raises(NotFound):
        oberrhein.set_switch("switch:99999", True)
    with pytest.raises(NotFound):
        oberrhein.feeder_index(["39", "nope"])
    with pytest.raises(NotFound):
        load_network("ieee_13")


def test_bus_vector_sums_items_onto_buses(cigre_mv: NetworkModel) -> None:
    bus = ["3", "3", "5"]
    v = cigre_mv.bus_vector(bus, np.array([[1.0, 2.0, 4.0], [0.0, 1.0, 0.0]]))
    p3, p5 = cigre_mv.bus_positions(["3", "5"])
    assert v.shape == (2, 15)
    assert v[0, p3] == 3 and v[0, p5] == 4 and v[1, p3] == 1
    np.testing.assert_allclose(np.array([[1.0, 2.0, 4.0]]) @ cigre_mv.incidence(bus).toarray(), v[:1])
