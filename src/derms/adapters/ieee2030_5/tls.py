"""Mutual TLS terminated in-process (IEEE 2030.5-2018 clause 6.11, CSIP 5.2.1).

The server offers TLS 1.2 with ``ECDHE-ECDSA-AES128-CCM8`` (named explicitly: OpenSSL 3
leaves CCM-8 out of its default list) on P-256, and requires a client certificate chaining
to the configured SERCA. uvicorn 0.54 does not pass the peer certificate to the ASGI app,
so :class:`ClientCertProtocol` reads it from the TLS transport once per connection and
stores it, with its LFDI, in the ASGI scope under ``scope["extensions"]["tls"]``
(``client_cert_der``, ``lfdi``, ``cipher``).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from derms.adapters.ieee2030_5.identity import lfdi_from_cert_der

CSIP_CIPHERS = "ECDHE-ECDSA-AES128-CCM8"
"""The one suite IEEE 2030.5-2018 6.11.5 requires."""

ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def server_context(
    cert: Path, key: Path, ca: Path, ciphers: str = CSIP_CIPHERS, *, require_client_cert: bool = True
) -> ssl.SSLContext:
    """TLS 1.2 server context with mutual authentication and the CSIP cipher suite."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    ctx.set_ecdh_curve("prime256v1")
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    ctx.load_cert_chain(str(cert), str(key))
    ctx.load_verify_locations(str(ca))
    return ctx


def client_context(
    cert: Path, key: Path, ca: Path, ciphers: str = CSIP_CIPHERS, *, check_hostname: bool = True
) -> ssl.SSLContext:
    """TLS 1.2 client context presenting ``cert`` (simulated devices, tests, notifications).

    ``check_hostname`` is off for notifications: CSIP device certificates carry no host
    name, so the peer is authenticated by its chain to the SERCA alone.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = check_hostname
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(ciphers)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.load_verify_locations(str(ca))
    return ctx


def client_cert_der(scope: MutableMapping[str, Any]) -> bytes | None:
    """The verified client certificate (DER) of this request, if TLS gave one."""
    tls = scope.get("extensions", {}).get("tls", {})
    cert = tls.get("client_cert_der")
    return cert if isinstance(cert, bytes) else None


def client_lfdi(scope: MutableMapping[str, Any]) -> str | None:
    """The LFDI of this connection's verified client certificate, computed once per connection."""
    lfdi = scope.get("extensions", {}).get("tls", {}).get("lfdi")
    return lfdi if isinstance(lfdi, str) else None


class ClientCertProtocol(HttpToolsProtocol):
    """uvicorn HTTP protocol that exposes the TLS peer certificate to the ASGI app."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # The stdlib loop leaves Nagle on under TLS: a response written as head + body
            # then waits for the client's delayed ACK (~40 ms per GET). uvloop sets this itself.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ssl_object = transport.get_extra_info("ssl_object")
        cert = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        tls = {
            "client_cert_der": cert,
            "lfdi": lfdi_from_cert_der(cert) if cert else None,
            "cipher": ssl_object.cipher() if ssl_object is not None else None,
        }
        inner: ASGIApp = self.app

        async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = tls
            await inner(scope, receive, send)

        self.app = app
