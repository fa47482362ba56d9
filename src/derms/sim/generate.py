"""A seeded, reproducible fleet: customers, sites on given buses, and their DERs.

The mix is residential-heavy: each home has some of rooftop PV, a battery (mostly with PV),
an EV charger, a smart thermostat and a water heater; a few per cent of sites are C&I
with a flexible load (declaring a sheddable share of 10 to 30 % of its demand) and often
PV; one utility-scale PV plant and one utility-scale
battery join when the fleet is large enough. Ratings follow common products (5 kW /
13.5 kWh home battery, 7.2 kW single-phase and 11 kW three-phase chargers, 4.5 kW tank
elements). Inverters declare reactive capability of 44 % of their VA rating
(IEEE 1547-2018 clause 5.2, category B).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from derms.core.der import Capabilities, Der, DerKind
from derms.core.site import Customer, Phase, Site
from derms.sim.supported import SUPPORTED_CONTROLS
from derms.sim.weather import default_weather

VAR_FRACTION = 0.44
"""Reactive capability per unit of VA rating (IEEE 1547-2018 5.2, category B)."""
UTILITY_MIN_FLEET = 50
"""Smallest fleet that gets utility-scale PV and storage."""
RESIDENTIAL_SHARES: dict[DerKind, float] = {
    DerKind.PV_INVERTER: 0.5,
    DerKind.EV_CHARGER: 0.3,
    DerKind.THERMOSTAT: 0.7,
    DerKind.WATER_HEATER: 0.3,
}
"""Probability that a home has each device; a battery comes with PV in 40 % of PV homes."""
CI_SHARE = 0.04


@functools.cache
def _inverter(
    w: float, *, kind: DerKind, v_nom: float = 230.0, phases: int = 1, **extra: float
) -> Capabilities:
    va = 1.1 * w
    return Capabilities(
        w_max=w,
        va_max=va,
        var_max_inject=VAR_FRACTION * va,
        var_max_absorb=VAR_FRACTION * va,
        v_nom=v_nom,
        phases=phases,
        controls=SUPPORTED_CONTROLS[kind],
        **extra,  # type: ignore[arg-type]
    )


@functools.cache
def _load(w: float, *, kind: DerKind, phases: int = 1, v_nom: float = 230.0) -> Capabilities:
    return Capabilities(
        w_max_consume=w, va_max=w, v_nom=v_nom, phases=phases, controls=SUPPORTED_CONTROLS[kind]
    )


def _capabilities(kind: DerKind, rng: np.random.Generator) -> Capabilities:
    match kind:
        case DerKind.PV_INVERTER:
            return _inverter(
                float(rng.choice([3_000.0, 4_000.0, 5_000.0, 6_000.0, 8_000.0, 10_000.0])), kind=kind
            )
        case DerKind.HOME_BATTERY:
            return _inverter(
                5_000.0,
                kind=kind,
                w_max_consume=5_000.0,
                wh_max=float(rng.choice([10_000.0, 13_500.0])),
                round_trip_efficiency=0.9,
                soc_reserve=0.1,
                ramp_w_per_s=1_000.0,
            )
        case DerKind.EV_CHARGER:
            three_phase = bool(rng.random() < 0.3)
            return _load(11_000.0 if three_phase else 7_200.0, kind=kind, phases=3 if three_phase else 1)
        case DerKind.THERMOSTAT:
            return _load(float(rng.choice([2_500.0, 3_500.0, 4_500.0])), kind=kind)
        case DerKind.WATER_HEATER:
            return _load(4_500.0, kind=kind)
        case DerKind.CI_LOAD:
            peak = 10_000.0 * float(rng.integers(2, 21))  # 20 to 200 kW in 10 kW steps
            return _load(peak, kind=kind, phases=3, v_nom=400.0)
        case DerKind.UTILITY_PV:
            return _inverter(
                2_000_000.0, kind=kind, v_nom=20_000.0, phases=3, ramp_w_per_s=2_000_000.0 * 0.1 / 60
            )
        case DerKind.UTILITY_BATTERY:
            return _inverter(
                1_000_000.0,
                kind=kind,
                v_nom=20_000.0,
                phases=3,
                w_max_consume=1_000_000.0,
                wh_max=2_000_000.0,
                round_trip_efficiency=0.88,
                soc_reserve=0.05,
            )
    raise ValueError(f"no generator for {kind}")


def _site_kinds(rng: np.random.Generator) -> tuple[list[DerKind], bool]:
    """The DER kinds of one new site and whether it is C&I."""
    if rng.random() < CI_SHARE:
        kinds = [DerKind.CI_LOAD]
        if rng.random() < 0.5:
            kinds.append(DerKind.PV_INVERTER)
        return kinds, True
    kinds = [kind for kind, share in RESIDENTIAL_SHARES.items() if rng.random() < share]
    if DerKind.PV_INVERTER in kinds and rng.random() < 0.4:
        kinds.insert(1, DerKind.HOME_BATTERY)
    return kinds or [DerKind.THERMOSTAT], False


def generate_fleet(
    n: int,
    buses: Sequence[str],
    *,
    seed: int,
    tenant_ids: Sequence[str],
    feeder_ids: Sequence[str | None] | None = None,
    protocol: str = "sim",
    prefix: str = "sim",
) -> tuple[list[Der], list[Site], list[Customer]]:
    """``n`` DERs on sites spread over ``buses`` (``feeder_ids[i]`` is the feeder of ``buses[i]``).

    Customers are spread over ``tenant_ids``. The same arguments give the same fleet. Sites are
    placed at the simulator's weather station (:func:`derms.sim.weather.default_weather`).
    Utility-scale units (for ``n >= UTILITY_MIN_FLEET``) sit on the first two buses given,
    which callers may set to the substation's MV buses.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not buses:
        raise ValueError("need at least one bus")
    if not tenant_ids:
        raise ValueError("need at least one tenant id")
    if feeder_ids is not None and len(feeder_ids) != len(buses):
        raise ValueError(f"feeder_ids has {len(feeder_ids)} entries for {len(buses)} buses")
    # Every site is at the weather station whose TMY the simulator's PV and loads follow.
    station = default_weather().location
    rng = np.random.default_rng(seed)
    # Sheddable shares from their own stream: the other draws of a seeded fleet stay as they were.
    shed_rng = np.random.default_rng([seed, 1])
    ders: list[Der] = []
    sites: list[Site] = []
    customers: list[Customer] = []

    def new_site(bus_index: int, phase: Phase) -> Site:
        number = len(sites)
        tenant = tenant_ids[int(rng.integers(len(tenant_ids)))]
        customer = Customer(f"{prefix}-cust-{number:06d}", tenant, f"Customer {number}")
        site = Site(
            id=f"{prefix}-site-{number:06d}",
            customer_id=customer.id,
            tenant_id=tenant,
            feeder_id=feeder_ids[bus_index] if feeder_ids is not None else None,
            bus=str(buses[bus_index]),
            phase=phase,
            meter_id=f"{prefix}-meter-{number:06d}",
            latitude=station.latitude,
            longitude=station.longitude,
        )
        customers.append(customer)
        sites.append(site)
        return site

    def add_der(site: Site, kind: DerKind) -> None:
        number = len(ders)
        der_id = f"{prefix}-der-{number:06d}"
        caps = _capabilities(kind, rng)
        if kind is DerKind.CI_LOAD:
            caps = replace(caps, sheddable_fraction=round(float(shed_rng.uniform(0.1, 0.3)), 2))
        ders.append(
            Der(
                id=der_id,
                site_id=site.id,
                kind=kind,
                capabilities=caps,
                protocol=protocol,
                address=der_id,
                tenant_id=site.tenant_id,
                name=f"{kind.value.replace('_', ' ')} {number}",
            )
        )

    if n >= UTILITY_MIN_FLEET:
        for i, kind in enumerate((DerKind.UTILITY_PV, DerKind.UTILITY_BATTERY)):
            add_der(new_site(i % len(buses), Phase.ABC), kind)
    phases = (Phase.A, Phase.B, Phase.C)
    while len(ders) < n:
        kinds, ci = _site_kinds(rng)
        phase = Phase.ABC if ci else phases[int(rng.integers(3))]
        site = new_site(int(rng.integers(len(buses))), phase)
        for kind in kinds[: n - len(ders)]:
            add_der(site, kind)
    return ders, sites, customers
