"""Translator for simulated devices: the simulator speaks derms' own control vocabulary.

The native command's payload is the setpoint's core control itself, so nothing is
quantised (``losses`` is always empty). Controls the simulated device kind does not model
are refused with :class:`LimitViolation`.
"""

from __future__ import annotations

from derms.adapters.base import NativeCommand
from derms.core.der import Der
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation
from derms.sim.supported import SUPPORTED_CONTROLS


class SimulatedTranslator:
    """Identity translation for ``protocol == "sim"``."""

    protocol = "sim"

    def translate(self, der: Der, setpoint: Setpoint, command_id: str) -> NativeCommand:
        control = setpoint.control
        if control.kind not in SUPPORTED_CONTROLS.get(der.kind, frozenset()):
            raise LimitViolation(der.id, f"simulated {der.kind} does not support {control.kind}")
        return NativeCommand(
            command_id=command_id,
            der_id=der.id,
            protocol=self.protocol,
            payload=control,
            start=setpoint.start,
            end=setpoint.end,
        )
