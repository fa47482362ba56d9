"""Domain errors. Outer layers (API, adapters) map these to protocol errors."""

from __future__ import annotations


class DermsError(Exception):
    """Base class of derms domain errors."""


class NotFound(DermsError):
    """A referenced entity (DER, site, feeder, ...) does not exist or is not visible."""

    def __init__(self, kind: str, ident: object) -> None:
        super().__init__(f"{kind} {ident!r} not found")
        self.kind = kind
        self.ident = ident


class ValidationFailed(DermsError):
    """Input is well-formed but violates a domain rule; ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class LimitViolation(DermsError):
    """A command would take a device outside its capability or contract limits."""

    def __init__(self, der_id: str, reason: str) -> None:
        super().__init__(f"{der_id}: {reason}")
        self.der_id = der_id
        self.reason = reason
