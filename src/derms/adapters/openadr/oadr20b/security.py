"""TLS client-certificate fingerprints for OpenADR 2.0b.

The 2.0b certificate fingerprint is the last 10 bytes of the SHA-256 digest of the DER
certificate, as colon-separated upper-case hex (OpenADR 2.0 certificate policy; also what the
openleadr reference implementation computes). uvicorn does not pass the client certificate to
the ASGI app, so :class:`PeerCertHttpProtocol` reads it from the TLS transport and puts it in
the request scope under :data:`PEER_CERT_SCOPE_KEY`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from uvicorn.protocols.http.h11_impl import H11Protocol

PEER_CERT_SCOPE_KEY = "derms.peer_cert_der"


def fingerprint(der: bytes) -> str:
    """OpenADR fingerprint of a DER-encoded certificate: ``"AB:CD:..."`` (10 bytes)."""
    digest = hashlib.sha256(der).hexdigest()[-20:].upper()
    return ":".join(digest[i : i + 2] for i in range(0, 20, 2))


def fingerprint_pem(pem: bytes) -> str:
    return fingerprint(x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER))


class PeerCertHttpProtocol(H11Protocol):
    """H11 protocol that adds the verified client certificate (DER) to every request scope."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        self._peer_der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None

    def handle_events(self) -> None:
        super().handle_events()
        if getattr(self, "scope", None) is not None and self._peer_der is not None:
            self.scope[PEER_CERT_SCOPE_KEY] = self._peer_der  # type: ignore[index]
