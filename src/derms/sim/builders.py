"""Per-device model parameters drawn from a DER's nameplate and a seeded random generator.

Values are typical of the device class (sources in each physics module); the spread gives a
fleet diversity so that thermostats and tanks do not switch in lockstep.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from derms.core.der import Der, DerKind
from derms.sim.physics import BatteryBank, CiLoads, EvChargers, Hvac, PvArrays, WaterHeaters
from derms.sim.physics.ev import DAY_S

type Model = PvArrays | BatteryBank | EvChargers | Hvac | WaterHeaters | CiLoads


def _caps(ders: Sequence[Der], name: str) -> np.ndarray:
    return np.array([getattr(d.capabilities, name) for d in ders], dtype=np.float64)


def build_model(
    kind: DerKind, ders: Sequence[Der], rng: np.random.Generator, t_s: float, tz_offset_s: float
) -> Model:
    """Physics rows for ``ders`` (all of ``kind``) at epoch time ``t_s`` [s]."""
    n = len(ders)
    u = rng.uniform
    match kind:
        case DerKind.PV_INVERTER | DerKind.UTILITY_PV:
            utility = kind is DerKind.UTILITY_PV
            w_ac = _caps(ders, "w_max")
            orientation = (
                np.full(n, 3, dtype=np.intp) if utility else rng.choice(3, size=n, p=[0.6, 0.2, 0.2])
            )
            return PvArrays(w_dc=w_ac * u(1.1, 1.3, n), w_ac=w_ac, orientation=orientation.astype(np.intp))
        case DerKind.HOME_BATTERY | DerKind.UTILITY_BATTERY:
            w_max = _caps(ders, "w_max")
            wh = _caps(ders, "wh_max")
            consume = _caps(ders, "w_max_consume")
            return BatteryBank(
                wh_max=np.where(wh > 0, wh, 2.0 * w_max),
                w_charge_max=np.where(consume > 0, consume, w_max),
                w_discharge_max=w_max,
                round_trip_efficiency=_caps(ders, "round_trip_efficiency"),
                soc=u(0.3, 0.7, n),
                soc_min=_caps(ders, "soc_reserve"),
                soc_max=np.ones(n),
            )
        case DerKind.EV_CHARGER:
            return _build_ev(ders, rng, t_s, tz_offset_s)
        case DerKind.THERMOSTAT:
            setpoint = rng.choice([22.0, 23.0, 24.0, 25.0], size=n)
            deadband = np.full(n, 1.0)
            return Hvac(
                r_k_per_w=0.002 * u(0.8, 1.2, n),
                c_j_per_k=3.6e7 * u(0.8, 1.2, n),
                w_elec=_caps(ders, "w_max_consume"),
                cop=u(2.8, 3.6, n),
                gain_w=u(300.0, 800.0, n),
                setpoint_c=setpoint,
                deadband_k=deadband,
                comfort_min_c=setpoint - 3.0,
                comfort_max_c=setpoint + 3.0,
                t_in_c=setpoint + u(-0.5, 0.5, n) * deadband,
                on=rng.random(n) < 0.3,
            )
        case DerKind.WATER_HEATER:
            setpoint = rng.choice([50.0, 52.0, 55.0], size=n)
            return WaterHeaters(
                volume_l=rng.choice([150.0, 190.0, 250.0, 300.0], size=n),
                element_w=_caps(ders, "w_max_consume"),
                ua_w_per_k=u(1.5, 3.0, n),
                setpoint_c=setpoint,
                deadband_k=np.full(n, 5.0),
                t_min_c=np.full(n, 43.0),
                t_max_c=np.full(n, 65.0),
                t_inlet_c=np.full(n, 18.0),
                t_ambient_c=np.full(n, 21.0),
                daily_draw_l=u(120.0, 260.0, n),
                t_tank_c=setpoint - u(0.0, 5.0, n),
                on=np.zeros(n, dtype=bool),
                draw_left_l=np.zeros(n),
            )
        case DerKind.CI_LOAD:
            return CiLoads(
                w_peak=0.85 * _caps(ders, "w_max_consume"),
                night_fraction=u(0.3, 0.5, n),
                flexible_fraction=_caps(ders, "sheddable_fraction"),
                open_hour=u(6.5, 8.5, n),
                close_hour=u(17.0, 20.0, n),
                noise=np.zeros(n),
            )
    raise ValueError(f"no simulator model for DER kind {kind!r}")


def _build_ev(ders: Sequence[Der], rng: np.random.Generator, t_s: float, tz_offset_s: float) -> EvChargers:
    """Home chargers: evening arrival, overnight dwell; a vehicle already plugged in from the
    previous evening is connected at the start with the share of its need not yet met."""
    n = len(ders)
    arrival_hour = np.clip(rng.normal(18.0, 1.5, n), 14.0, 23.0)
    dwell_h = np.clip(rng.normal(12.0, 1.5, n), 4.0, 16.0)
    need_mean = rng.uniform(8_000.0, 16_000.0, n)
    ev = EvChargers(
        w_max=_caps(ders, "w_max_consume"),
        efficiency=np.full(n, 0.9),
        vehicle_wh=rng.choice([40_000.0, 60_000.0, 75_000.0, 100_000.0], size=n),
        arrival_hour=arrival_hour,
        dwell_h=dwell_h,
        need_wh_mean=need_mean,
        connected=np.zeros(n, dtype=bool),
        need_wh=np.zeros(n),
        next_arrival_s=np.zeros(n),
        departure_s=np.zeros(n),
    )
    everyone = np.ones(n, dtype=bool)
    ev.schedule(t_s, tz_offset_s, rng, everyone)
    previous = ev.next_arrival_s - DAY_S
    departure = previous + dwell_h * 3600.0
    plugged = departure > t_s
    charge_h = need_mean / (ev.w_max * ev.efficiency)
    remaining = np.clip(1.0 - (t_s - previous) / 3600.0 / charge_h, 0.0, 1.0)
    ev.plug_in(plugged, t_s, need_mean * remaining, departure - t_s)
    ev.next_arrival_s[plugged] = np.inf
    return ev
