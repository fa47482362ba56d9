"""DER kinds, nameplate ratings and capabilities."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from derms.core.controls import ControlKind


class DerKind(StrEnum):
    """The kinds of distributed energy resource derms manages."""

    PV_INVERTER = "pv_inverter"
    """Rooftop PV behind a smart inverter (IEEE 1547-2018)."""
    HOME_BATTERY = "home_battery"
    EV_CHARGER = "ev_charger"
    THERMOSTAT = "thermostat"
    """Smart thermostat driving HVAC (cooling load in summer)."""
    WATER_HEATER = "water_heater"
    CI_LOAD = "ci_load"
    """Commercial and industrial flexible load."""
    UTILITY_PV = "utility_pv"
    UTILITY_BATTERY = "utility_battery"

    @property
    def is_storage(self) -> bool:
        return self in (DerKind.HOME_BATTERY, DerKind.UTILITY_BATTERY)

    @property
    def is_generation(self) -> bool:
        return self in (DerKind.PV_INVERTER, DerKind.UTILITY_PV)

    @property
    def is_load(self) -> bool:
        return self in (DerKind.EV_CHARGER, DerKind.THERMOSTAT, DerKind.WATER_HEATER, DerKind.CI_LOAD)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """Nameplate ratings and supported control functions (IEEE 1547-2018 clause 10.3 nameplate).

    All powers are magnitudes in SI units. ``w_max`` is the maximum active power output
    (generation or discharge) and ``w_max_consume`` the maximum active power drawn (load,
    charge). ``ramp_w_per_s`` limits how fast the active-power setpoint may change; ``None``
    means no ramp limit is declared.
    """

    w_max: float = 0.0
    """Maximum active power injected [W]."""
    w_max_consume: float = 0.0
    """Maximum active power consumed [W]."""
    va_max: float = 0.0
    """Apparent power rating [VA]."""
    var_max_inject: float = 0.0
    """Maximum reactive power injected [var]."""
    var_max_absorb: float = 0.0
    """Maximum reactive power absorbed [var]."""
    wh_max: float = 0.0
    """Usable energy capacity for storage [Wh]; 0 for other kinds."""
    ramp_w_per_s: float | None = None
    """Maximum rate of change of active power [W/s]."""
    round_trip_efficiency: float = 1.0
    """Storage round-trip efficiency [-]."""
    soc_reserve: float = 0.0
    """Storage: share of its usable energy held back as a minimum reserve (backup power) that
    dispatch may not use [-]; SunSpec model 124 ``MinRsvPct`` / 100."""
    sheddable_fraction: float = 1.0
    """Share of its present consumption a flexible load can shed (e.g. a C&I site's process
    load that may be curtailed) [-]; 1 for loads that can shed all of it."""
    r_k_per_w: float | None = None
    """Thermostat: 1R1C thermal resistance between its zone and outdoors [K/W]; None when not
    declared (the planner then assumes a class-typical house, see
    ``derms.orchestration.live``)."""
    c_j_per_k: float | None = None
    """Thermostat: 1R1C thermal capacitance of its zone [J/K]; None when not declared."""
    cop: float | None = None
    """Thermostat: coefficient of performance of its cooling unit [-]; None when not declared."""
    v_nom: float = 230.0
    """Nominal AC voltage [V]."""
    phases: int = 1
    controls: frozenset[ControlKind] = field(default_factory=frozenset)
    """Control functions the device supports natively."""

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be >= 0"
            for name in ("w_max", "w_max_consume", "va_max", "var_max_inject", "var_max_absorb", "wh_max")
            if getattr(self, name) < 0
        ]
        if self.ramp_w_per_s is not None and self.ramp_w_per_s <= 0:
            problems.append("ramp_w_per_s must be > 0 when given")
        if not 0 < self.round_trip_efficiency <= 1:
            problems.append("round_trip_efficiency must be in (0, 1]")
        if not 0 <= self.soc_reserve < 1:
            problems.append("soc_reserve must be in [0, 1)")
        if not 0 <= self.sheddable_fraction <= 1:
            problems.append("sheddable_fraction must be in [0, 1]")
        for name in ("r_k_per_w", "c_j_per_k", "cop"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                problems.append(f"{name} must be > 0 when given")
        if self.phases not in (1, 2, 3):
            problems.append("phases must be 1, 2 or 3")
        if problems:
            raise ValueError("; ".join(problems))

    def supports(self, kind: ControlKind) -> bool:
        return kind in self.controls


@dataclass(frozen=True, slots=True)
class Der:
    """A registered DER.

    ``protocol`` names the adapter that reaches it (``"ieee2030_5"``, ``"ocpp"``, ``"sim"`` ...)
    and ``address`` is the adapter's own identifier for it (an LFDI, a charge point id, a
    Modbus host:port/unit ...).
    """

    id: str
    site_id: str
    kind: DerKind
    capabilities: Capabilities
    protocol: str
    address: str
    tenant_id: str
    name: str = ""
    enabled: bool = True
