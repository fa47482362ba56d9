"""Request scopes: what one client certificate may see (the envoy ``request_scope`` idea).

The route resolves the certificate to a :class:`CertificateScope`; the manager turns that
into a :class:`DeviceScope` listing exactly the EndDevices the client may touch (a device:
itself; an aggregator: itself and the devices assigned to it). Every repository query for
device resources takes a ``DeviceScope`` and an EndDevice id, so isolation is structural.
"""

from __future__ import annotations

from dataclasses import dataclass

from derms.core.errors import NotFound


@dataclass(frozen=True, slots=True)
class CertificateScope:
    """Identity proven by the TLS client certificate (or a trusted proxy's header)."""

    lfdi: str
    sfdi: int
    source: str = "tls"


@dataclass(frozen=True, slots=True)
class DeviceScope:
    """The EndDevices visible to one certificate, within one tenant."""

    lfdi: str
    sfdi: int
    tenant_id: str | None
    own_edev_id: int | None
    edev_ids: frozenset[int]
    is_aggregator: bool = False

    def require(self, edev_id: int) -> int:
        """Return ``edev_id`` if visible, else raise :class:`NotFound` (no enumeration hints)."""
        if edev_id not in self.edev_ids:
            raise NotFound("EndDevice", edev_id)
        return edev_id
