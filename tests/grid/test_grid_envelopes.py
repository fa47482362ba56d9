from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from derms.core.errors import ValidationFailed
from derms.grid.envelopes import DOE_COLUMNS, DoePolicy, operating_envelopes
from derms.grid.limits import Limits, check
from derms.grid.model import NetworkModel
from derms.grid.powerflow import PgmEngine, run_pandapower

STARTS = pd.date_range("2026-07-01 08:00", periods=6, freq="30min", tz="UTC")
LOAD = np.array([0.3, 0.5, 0.7, 0.9, 1.0, 0.6])


def make_sites(m: NetworkModel, n: int = 80, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    bus = rng.choice(m.buses.index[m.buses["has_load"]].to_numpy(), n)
    return pd.DataFrame(
        {
            "bus": bus,
            "export_capacity_w": rng.choice([50e3, 100e3, 400e3], n),
            "import_capacity_w": rng.choice([100e3, 300e3], n),
        },
        index=pd.Index([f"site-{i}" for i in range(n)], name="site_id"),
    )


def site_injections(m: NetworkModel, sites: pd.DataFrame, doe: pd.DataFrame, column: str) -> np.ndarray:
    w = doe.pivot(index="start", columns="site_id", values=column)[sites.index].to_numpy()
    return m.bus_vector(sites["bus"].to_numpy(), w)


@pytest.mark.parametrize("fairness", ["equal", "proportional"])
def test_every_doe_interval_is_verified_by_ac_power_flow(oberrhein: NetworkModel, fairness: str) -> None:
    eng = PgmEngine(oberrhein)
    limits = Limits.ansi("A", reverse_flow=False)
    sites = make_sites(oberrhein)
    doe = operating_envelopes(
        eng,
        limits,
        sites,
        STARTS,
        timedelta(minutes=30),
        load_scale=LOAD,
        policy=DoePolicy(fairness=fairness),
    )
    assert tuple(doe.columns) == DOE_COLUMNS and len(doe) == len(sites) * len(STARTS)
    assert doe["verified"].all() and not doe["fallback"].any()
    assert (doe["end"] - doe["start"] == timedelta(minutes=30)).all()
    base = check(eng.run_batch(load_scale=LOAD), oberrhein, limits, STARTS)
    for column, sign in (("export_w", 1.0), ("import_w", -1.0)):
        p = sign * site_injections(oberrhein, sites, doe, column)
        # all sites at their envelope at once: no violation the base case does not already have
        worst = check(eng.run_batch(p, load_scale=LOAD), oberrhein, limits, STARTS)
        assert set(map(tuple, worst[["time", "element"]].to_numpy())) <= set(
            map(tuple, base[["time", "element"]].to_numpy())
        )
        # and the pandapower reference agrees at the heaviest interval
        k = int(np.argmax(LOAD)) if sign > 0 else int(np.argmin(LOAD))
        ref = check(run_pandapower(oberrhein, p[k], load_scale=LOAD[k]), oberrhein, limits)
        assert set(ref["element"]) <= set(base.loc[base["time"] == STARTS[k], "element"])
        # envelopes are tight: 10 % more everywhere breaks a limit in some interval
        over = check(eng.run_batch(1.1 * p + 1e4 * sign, load_scale=LOAD), oberrhein, limits, STARTS)
        assert len(over) > len(worst)
    # more local load leaves room for more export
    per_interval = doe.groupby("start")["export_w"].sum().to_numpy()
    assert per_interval[LOAD.argmax()] > per_interval[LOAD.argmin()]


def test_fairness_rules_share_the_feeder_as_documented(oberrhein: NetworkModel) -> None:
    eng = PgmEngine(oberrhein)
    sites = make_sites(oberrhein, n=150)
    limits = Limits.ansi("A", reverse_flow=False)
    common = {"load_scale": LOAD[1:3]}
    eq = operating_envelopes(eng, limits, sites, STARTS[:2], timedelta(minutes=30), **common)
    pr = operating_envelopes(
        eng,
        limits,
        sites,
        STARTS[:2],
        timedelta(minutes=30),
        policy=DoePolicy(fairness="proportional"),
        **common,
    )
    assert eq["verified"].all() and pr["verified"].all()
    cap = sites["export_capacity_w"].reindex(eq["site_id"]).to_numpy()
    eq["capped"] = eq["export_w"] >= cap - 1e-6
    for _, g in eq[~eq["capped"]].groupby(["start", "feeder_id"]):
        assert g["export_w"].nunique() == 1  # equal: one level per feeder and interval
    pr["ratio"] = pr["export_w"] / sites["export_capacity_w"].reindex(pr["site_id"]).to_numpy()
    for _, g in pr.groupby(["start", "feeder_id"]):
        assert np.ptp(g["ratio"]) < 1e-9  # proportional: one fraction per feeder and interval
    assert not np.allclose(eq["export_w"], pr["export_w"])


def test_missing_forecast_falls_back_to_defaults(oberrhein: NetworkModel) -> None:
    sites = make_sites(oberrhein, n=20)
    load = LOAD.copy()
    load[2] = np.nan
    policy = DoePolicy(fallback_export_w=1500.0, fallback_import_w=5000.0)
    doe = operating_envelopes(
        PgmEngine(oberrhein),
        Limits.ansi("A"),
        sites,
        STARTS,
        timedelta(minutes=30),
        load_scale=load,
        policy=policy,
    )
    fb = doe[doe["start"] == STARTS[2]]
    assert fb["fallback"].all() and not fb["verified"].any()
    assert (fb["export_w"] == 1500.0).all() and (fb["import_w"] == 5000.0).all()
    assert doe.loc[doe["start"] != STARTS[2], "verified"].all()


def test_bad_site_table_is_rejected(oberrhein: NetworkModel) -> None:
    eng = PgmEngine(oberrhein)
    with pytest.raises(ValidationFailed):
        operating_envelopes(
            eng, Limits.ansi("A"), pd.DataFrame({"bus": ["0"]}), STARTS, timedelta(minutes=30)
        )
    naive = pd.date_range("2026-07-01", periods=2, freq="30min")
    with pytest.raises(ValidationFailed):
        operating_envelopes(eng, Limits.ansi("A"), make_sites(oberrhein, 3), naive, timedelta(minutes=30))
