"""Simple HTTP transport of the 2.0b VTN (2.0b section 13): ASGI app plus an in-process server.

Each service is ``POST <prefix>/OpenADR2/Simple/2.0b/<service>`` with an ``application/xml``
body. With TLS, the client certificate's OpenADR fingerprint (:mod:`.security`) is handed to
the VTN, which compares it with the fingerprint provisioned for the VEN.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from derms.adapters.openadr.oadr20b.security import PEER_CERT_SCOPE_KEY, PeerCertHttpProtocol, fingerprint
from derms.adapters.openadr.oadr20b.vocabulary import SERVICES
from derms.adapters.openadr.oadr20b.vtn import Vtn
from derms.adapters.openadr.oadr20b.xmlutil import MAX_MESSAGE_BYTES

PATH = "/OpenADR2/Simple/2.0b"


def make_app(vtn: Vtn, prefix: str = "") -> Starlette:
    async def endpoint(request: Request) -> Response:
        service = request.path_params["service"]
        if service not in SERVICES:
            return Response(status_code=404)
        try:
            body = await request.body()
        except ClientDisconnect:
            return Response(status_code=400)
        if len(body) > MAX_MESSAGE_BYTES:
            return Response(status_code=413)
        der = request.scope.get(PEER_CERT_SCOPE_KEY)
        reply = await vtn.handle(service, body, fingerprint(der) if der else None)
        return Response(reply, media_type="application/xml")

    return Starlette(routes=[Route(f"{prefix}{PATH}/{{service}}", endpoint, methods=["POST"])])


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Server certificate and key, and the CA bundle that signs VEN certificates."""

    certfile: str
    keyfile: str
    ca_certs: str
    require_client_cert: bool = True


class HttpServer:
    """uvicorn on an asyncio loop we own; ``port=0`` picks a free port (see :attr:`port`)."""

    def __init__(
        self, app: Starlette, host: str = "127.0.0.1", port: int = 0, tls: TlsFiles | None = None
    ) -> None:
        kwargs: dict[str, object] = {}
        if tls is not None:
            kwargs = {
                "ssl_certfile": tls.certfile,
                "ssl_keyfile": tls.keyfile,
                "ssl_ca_certs": tls.ca_certs,
                "ssl_cert_reqs": ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL,
                "http": PeerCertHttpProtocol,
            }
        self.config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off", access_log=False, **kwargs
        )
        self.tls = tls
        self._server = uvicorn.Server(self.config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._server.config.setup_event_loop = lambda: None  # type: ignore[method-assign]
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("HTTP server stopped during start-up")
            await asyncio.sleep(0.01)

    @property
    def port(self) -> int:
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.config.host}:{self.port}"

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None
