"""Translator contract and the bridge that dispatches setpoints to translators by protocol."""

from __future__ import annotations

import uuid
from typing import Protocol

from derms.adapters.base import NativeCommand
from derms.bridge.limits import check_limits
from derms.core.der import Der
from derms.core.dispatch import Setpoint
from derms.core.errors import LimitViolation


class Translator(Protocol):
    """Turns a setpoint for one DER into its protocol's :class:`NativeCommand`.

    Raises :class:`LimitViolation` for a control the protocol or device cannot carry, and
    records in ``NativeCommand.losses`` every value it had to quantise.
    """

    protocol: str

    def translate(self, der: Der, setpoint: Setpoint, command_id: str) -> NativeCommand: ...


class Bridge:
    """Registry of translators by protocol name."""

    def __init__(self, translators: list[Translator] | None = None) -> None:
        self._translators: dict[str, Translator] = {}
        for translator in translators or []:
            self.register(translator)

    def register(self, translator: Translator) -> None:
        self._translators[translator.protocol] = translator

    @property
    def protocols(self) -> frozenset[str]:
        return frozenset(self._translators)

    def translate(self, der: Der, setpoint: Setpoint, command_id: str | None = None) -> NativeCommand:
        """Check limits, then translate. Raises :class:`LimitViolation` with the reason."""
        if setpoint.der_id != der.id:
            raise ValueError(f"setpoint is for {setpoint.der_id}, not {der.id}")
        translator = self._translators.get(der.protocol)
        if translator is None:
            raise LimitViolation(der.id, f"no translator for protocol {der.protocol!r}")
        check_limits(der, setpoint.control)
        return translator.translate(der, setpoint, command_id or uuid.uuid4().hex)
