"""Objectives to targets: peak reduction, capacity, reserve, arbitrage, voltage support."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from derms.core.der import DerKind
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.orchestration.flexibility import flexibility
from derms.orchestration.inputs import FleetInput, Preferences, kind_code
from derms.orchestration.objectives import Areas, translate
from derms.orchestration.optimizer import solve
from derms.orchestration.problem import Problem, Sense
from derms.orchestration.synthetic import radial_grid

T0 = datetime(2026, 7, 15, 16, 0, tzinfo=UTC)
AREAS = Areas(
    feeder_ids=("F0", "F1"),
    substation_of_feeder={"F0": "S0", "F1": "S1"},
    feeder_of_row=np.array([0, 0, 1, 1]),
)


def fleet() -> FleetInput:
    """Four 5 kW / 13.5 kWh batteries, two per feeder, half full."""
    return FleetInput.build(
        ["a", "b", "c", "d"],
        kind=kind_code(DerKind.HOME_BATTERY),
        feeder=[0, 0, 1, 1],
        bus=[0, 1, 2, 3],
        soc=0.5,
        w_max=5000.0,
        w_max_consume=5000.0,
        wh_max=13500.0,
        var_max_inject=2000.0,
        var_max_absorb=2000.0,
    )


def objective(kind: ObjectiveKind, **kw: object) -> Objective:
    return Objective(f"{kind}", kind, T0, timedelta(hours=1), **kw)  # type: ignore[arg-type]


def problem(objs: list[Objective], steps: int = 1, **kw: object) -> Problem:
    fl = fleet()
    prefs = Preferences.build(fl.n, steps, cost_up=[0.05, 0.06, 0.07, 0.08], cost_down=0.01)
    t = translate(objs, fl, AREAS, start=T0, dt_s=900.0, steps=steps, **kw)  # type: ignore[arg-type]
    f = flexibility(fl, prefs, steps=steps)
    return Problem.of(
        fl,
        prefs,
        f,
        targets=t.targets,
        grid=t.grid,
        prices=t.prices,
        price_members=t.price_members,
    )


def test_peak_reduction_on_one_feeder() -> None:
    obj = objective(ObjectiveKind.PEAK_REDUCTION, area=Area(AreaLevel.FEEDER, ("F1",)), target_w=100e3)
    p = problem([obj], area_import_w={obj.id: np.array([107e3])})
    sol = solve(p)
    assert sol.p_w[:, 0].tolist() == pytest.approx([0.0, 0.0, 5000.0, 2000.0])
    assert sol.why.objective(2) == obj.id and sol.why.objective(0) is None


def test_peak_reduction_needs_the_import_forecast() -> None:
    obj = objective(ObjectiveKind.PEAK_REDUCTION, area=Area(AreaLevel.FEEDER, ("F1",)), target_w=100e3)
    with pytest.raises(ValueError, match="import forecast"):
        problem([obj])


def test_unknown_area_is_refused() -> None:
    obj = objective(ObjectiveKind.CAPACITY_TARGET, area=Area(AreaLevel.SUBSTATION, ("S9",)), target_w=1.0)
    with pytest.raises(ValueError, match="unknown substation"):
        problem([obj])


def test_reserve_is_held_while_delivering() -> None:
    cap = objective(ObjectiveKind.CAPACITY_TARGET, target_w=12e3, priority=50)
    reserve = objective(ObjectiveKind.RESERVE, target_w=10e3, priority=10)
    p = problem([cap, reserve])
    assert [t.sense for t in p.targets] == [Sense.RESERVE, Sense.DELIVER]
    sol = solve(p)
    # 20 kW of headroom cannot give 12 kW and keep 10 kW: the reserve (priority 10) wins.
    headroom = (p.flex.p_hi[:, 0] - sol.p_w[:, 0]).sum()
    assert headroom == pytest.approx(10e3, abs=1.0)
    assert sol.shortfall_w[cap.id][0] == pytest.approx(2e3, abs=1.0)
    assert sol.shortfall_w[reserve.id][0] == pytest.approx(0.0, abs=1.0)


def test_arbitrage_charges_cheap_and_discharges_dear() -> None:
    # 2 h at 5 kW needs 10 kWh, more than the 6.75 kWh stored: charge in the cheap hours first.
    prices = (0.05,) * 8 + (0.60,) * 8
    arb = Objective("arb", ObjectiveKind.ARBITRAGE, T0, timedelta(hours=4), prices=prices)
    p = problem([arb], steps=16)
    sol = solve(p)
    assert sol.p_w[:, :8].sum() < 0 < sol.p_w[:, 8:].sum()
    assert sol.p_w[:, 8:].sum() * 0.25 > 4 * 6750.0


def test_voltage_support_band_tightens_grid_rows() -> None:
    grid = radial_grid(
        2,
        2,
        np.array([1e5, 1e5]),
        rating_w=1e6,
        r_ohm_per_km=40.0,
        x_ohm_per_km=40.0,
        v0_pu=np.array([1.0, 1.0]),
    )
    assert grid.rows == 4
    cap = objective(ObjectiveKind.CAPACITY_TARGET, target_w=15e3)
    volt = objective(
        ObjectiveKind.VOLTAGE_SUPPORT, area=Area(AreaLevel.FEEDER, ("F0",)), v_min_pu=0.98, v_max_pu=1.0005
    )
    loose = solve(problem([cap], grid=grid))
    tight_problem = problem([cap, volt], grid=grid)
    assert tight_problem.grid is not None and tight_problem.grid.limit_hi[1] == pytest.approx(1.0005)
    assert tight_problem.grid.limit_hi[3] == pytest.approx(1.05)  # feeder F1 keeps its band
    tight = solve(tight_problem)
    assert tight.shortfall_w[cap.id][0] == pytest.approx(0.0, abs=1.0)
    # The linearised end-of-feeder voltage of F0 respects the tighter band; it did not before.
    g = tight_problem.grid
    for sol, ok in ((loose, False), (tight, True)):
        dp = np.bincount(tight_problem.bus, sol.p_w[:, 0] - tight_problem.flex.base[:, 0], g.n_bus)
        dq = np.bincount(tight_problem.bus, sol.q_var - tight_problem.flex.q_base, g.n_bus)
        v_end = g.value0[1] + (g.sp @ dp)[1] + (g.sq @ dq)[1]
        assert bool(v_end <= 1.0005 + 1e-9) == ok
