"""The orchestrator's rolling horizon consuming the load forecasts.

Every 30 minutes of (manual) clock time the feeder's next-4-hour demand forecast is
re-issued from the newest metered interval and handed to ``derms.orchestration`` as the
area import of a peak-reduction objective; each plan must shave exactly the forecast
excess over the target at its first step.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from derms.core.clock import ManualClock
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind
from derms.forecast.api import HORIZONS, forecast_feeder_load
from derms.forecast.load import fit_load_model
from derms.orchestration.engine import Orchestrator
from derms.orchestration.objectives import Areas
from derms.orchestration.synthetic import scenario

pytest.importorskip("pmdarima", reason="the 'backtest' extra (pmdarima) carries the real load series")
from derms.forecast.backtest import taylor_load

ISSUE = 6 * 7 * 48 + 30  # six weeks of history, then a Monday 15:00 BST


def test_rolling_horizon_plans_peak_reduction_from_each_new_forecast():
    times, y = taylor_load()
    feeder_w = y / y.mean() * 1.5e6  # the national shape on a 1.5 MW feeder
    model = fit_load_model(
        times[:ISSUE], feeder_w[:ISSUE], interval_s=1800, max_horizon=48, samples=3000, max_iter=40
    )
    sc = scenario(800, feeders=2, buses_per_feeder=4, steps=8, seed=5)
    start = datetime.fromisoformat(str(times[ISSUE])).replace(tzinfo=UTC)
    clock = ManualClock(start)
    orch = Orchestrator(sc.fleet, sc.prefs, Areas(("F0", "F1")), clock, grid=None, dt_s=1800.0, steps=8)
    first = forecast_feeder_load(model, times[:ISSUE], feeder_w[:ISSUE], HORIZONS["4 h"])
    target = float(first.forecast.p50[:, 0].max()) - 60e3
    orch.objectives.append(
        Objective(
            "peak-F0",
            ObjectiveKind.PEAK_REDUCTION,
            start,
            timedelta(hours=6),
            area=Area(AreaLevel.FEEDER, ("F0",)),
            target_w=target,
        )
    )
    f0 = sc.fleet.feeder == 0
    for k in range(3):  # three re-plans, 30 minutes apart
        now = ISSUE + k
        bundle = forecast_feeder_load(model, times[:now], feeder_w[:now], HORIZONS["4 h"])
        assert bundle.forecast.times[0] == times[now]  # the plan's first step is the next interval
        imports = bundle.forecast.p50[:, 0]
        orch.area_import_w = {"peak-F0": imports}
        outcome = orch.plan(trigger="forecast")
        shaved = (outcome.solution.p_w[f0] - outcome.problem.flex.base[f0]).sum(axis=0)
        need = np.maximum(imports - target, 0.0)
        assert shaved[0] == pytest.approx(need[0], abs=1.0)
        assert (shaved >= need - 1.0).all()
        clock.advance(1800)
