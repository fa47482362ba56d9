"""Translate core controls into CTA-2045-B DR commands, with the precision lost made explicit.

CTA-2045 Basic DR carries a command and a duration, never a power: the duration byte ``n``
means ``2·n²`` seconds (CTA-2045-B 10.1.2), so a setpoint's duration is quantised (10 min
becomes 578 s) and anything past 2·254² s is sent as "unknown", held until End Shed.

* :class:`LoadShed` level 0/1/2/3 → End Shed / Shed / Critical Peak / Grid Emergency.
* :class:`LoadUp` level 1 → Load Up; level 2 → Advanced Load Up (CTA-2045-B 11.6) asking for
  the device's storage capacity ``wh_max`` (else rated power × duration) in the smallest
  unit (1, 10, 100, 1000 Wh) that fits the 16-bit value, duration in whole minutes.
* :class:`ActivePowerTarget` (a consumption target in W) becomes a level: at most half the
  rated consumption → Shed (expected 0 W: element held off), more → Load Up (expected the
  full rating). The watts the SGD is expected to draw are reported as the delivered value.
* :class:`LoadLimit` → Power Level request in whole percent of the rated consumption.
"""

from __future__ import annotations

import math

from cta2045.codec import Duration, DurationType
from cta2045.enums import AdvancedLoadUpUnits

from derms.adapters.base import NativeCommand, PrecisionLoss
from derms.adapters.cta2045.adapter import Action, Cta2045Command
from derms.core.controls import ActivePowerTarget, LoadLimit, LoadShed, LoadUp
from derms.core.der import Der
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation

_SHED_LEVELS = {0: Action.END_SHED, 1: Action.SHED, 2: Action.CRITICAL_PEAK, 3: Action.GRID_EMERGENCY}
_UNITS = (
    (1, AdvancedLoadUpUnits.Wh_1),
    (10, AdvancedLoadUpUnits.Wh_10),
    (100, AdvancedLoadUpUnits.Wh_100),
    (1000, AdvancedLoadUpUnits.Wh_1000),
)


def quantise_duration(seconds: float) -> float | None:
    """The duration the SGD will decode for ``seconds`` (None: unknown, until End Shed)."""
    sent = Duration.of_seconds(round(seconds)).nearest()
    return float(sent.seconds) if sent.type is DurationType.Seconds and sent.seconds is not None else None


class Cta2045Translator:
    protocol = "cta2045"

    def translate(self, der: Der, setpoint: Setpoint, command_id: str) -> NativeCommand:
        seconds = (setpoint.end - setpoint.start).total_seconds()
        rating = der.capabilities.w_max_consume
        losses: list[PrecisionLoss] = []
        notes: list[str] = []

        def timed(action: Action) -> Cta2045Command:
            delivered = quantise_duration(seconds)
            if delivered is None:
                notes.append(f"{seconds:.0f} s exceeds the longest CTA-2045 duration; held until End Shed")
            elif delivered != seconds:
                losses.append(PrecisionLoss("duration_s", seconds, delivered, "s"))
            return Cta2045Command(action, delivered)

        match setpoint.control:
            case LoadShed(level=level):
                command = Cta2045Command(Action.END_SHED) if level == 0 else timed(_SHED_LEVELS[level])
            case LoadUp(level=1):
                command = timed(Action.LOAD_UP)
            case LoadUp():
                command = self._advanced(der, seconds, losses)
            case ActivePowerTarget(w=w):
                if rating <= 0:
                    raise LimitViolation(der.id, "CTA-2045 power targets need the device's w_max_consume")
                shed = -w <= 0.5 * rating
                command = timed(Action.SHED if shed else Action.LOAD_UP)
                losses.append(PrecisionLoss("p_w", w, 0.0 if shed else -rating, "W"))
                notes.append(
                    "CTA-2045 carries no power: expected draw of the chosen level reported as delivered"
                )
            case LoadLimit(w=w):
                if rating <= 0:
                    raise LimitViolation(der.id, "CTA-2045 power levels need the device's w_max_consume")
                percent = math.floor(min(100.0, w / rating * 100.0) + 1e-9)
                if percent * rating / 100.0 != w:
                    losses.append(PrecisionLoss("load_limit_w", w, percent * rating / 100.0, "W"))
                command = Cta2045Command(Action.POWER_LEVEL, percent=percent)
            case other:
                raise LimitViolation(der.id, f"CTA-2045 cannot carry {other.kind}")
        return NativeCommand(
            command_id=command_id,
            der_id=der.id,
            protocol=self.protocol,
            payload=command,
            start=setpoint.start,
            end=setpoint.end,
            losses=tuple(losses),
            notes=tuple(notes),
        )

    @staticmethod
    def _advanced(der: Der, seconds: float, losses: list[PrecisionLoss]) -> Cta2045Command:
        caps = der.capabilities
        energy = caps.wh_max if caps.wh_max > 0 else caps.w_max_consume * seconds / 3600.0
        if energy <= 0:
            raise LimitViolation(der.id, "advanced load up needs wh_max or w_max_consume")
        minutes = min(0xFFFF, max(1, round(seconds / 60.0)))
        if minutes * 60.0 != seconds:
            losses.append(PrecisionLoss("duration_s", seconds, minutes * 60.0, "s"))
        fitting = [(size, units) for size, units in _UNITS if round(energy / size) <= 0xFFFF]
        if not fitting:
            raise LimitViolation(der.id, f"advanced load up of {energy:.0f} Wh exceeds 65535 kWh")
        size, units = fitting[0]
        value = round(energy / size)
        if value * size != energy:
            losses.append(PrecisionLoss("energy_wh", energy, float(value * size), "Wh"))
        return Cta2045Command(Action.ADVANCED_LOAD_UP, minutes=minutes, value=value, units=units)
