"""The websocket front of the CSMS: one server, many charge points, two OCPP versions.

OCPP-J (1.6 JSON spec clause 3; 2.0.1 part 4 clause 3): the charge point connects to
``<path_prefix>/<chargePointId>`` offering subprotocol ``ocpp1.6`` and/or ``ocpp2.0.1``; we
pick the first of our preferred list it offers and refuse a connection that offers none.
Security profiles 1 and 2 (2.0.1 part 2 A00; 1.6 security whitepaper clause 2): HTTP basic
auth whose user name is the charge point id, checked before the upgrade; profile 2 adds
server-side TLS.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import ssl
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from derms.adapters.ocpp.settings import OcppSettings, verify_password
from derms.adapters.ocpp.stations import STATION_CLASSES, Station, StationObserver
from derms.core.clock import Clock

log = logging.getLogger(__name__)


class StationRegistry:
    """Connected stations by charge point id."""

    def __init__(self) -> None:
        self.stations: dict[str, Station] = {}
        self.connected = asyncio.Condition()

    async def wait_for(self, station_id: str, *, booted: bool = True) -> Station:
        """Wait until ``station_id`` is connected (and has booted, by default); wrap in a timeout."""

        def ready() -> bool:
            station = self.stations.get(station_id)
            return station is not None and (station.booted or not booted)

        async with self.connected:
            await self.connected.wait_for(ready)
        return self.stations[station_id]

    async def changed(self) -> None:
        async with self.connected:
            self.connected.notify_all()


class Csms:
    """Accepts charge point connections and runs one :class:`Station` session per connection."""

    def __init__(self, settings: OcppSettings, observer: StationObserver, clock: Clock) -> None:
        self.settings = settings
        self.observer = observer
        self.clock = clock
        self.registry = StationRegistry()
        self._server: Server | None = None
        self._on_closed: list[Any] = []

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("CSMS not started")
        return int(self._server.sockets[0].getsockname()[1])

    def on_closed(self, callback: Any) -> None:
        """Register ``async callback(station_id)`` run when a station's connection ends."""
        self._on_closed.append(callback)

    async def start(self) -> None:
        ssl_context = None
        if self.settings.tls_certfile is not None:
            ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
            ssl_context.load_cert_chain(self.settings.tls_certfile, self.settings.tls_keyfile)
        self._server = await serve(
            self._handle,
            self.settings.host,
            self.settings.port,
            subprotocols=list(self.settings.subprotocols),  # type: ignore[arg-type]
            select_subprotocol=self._select_subprotocol,
            process_request=self._authenticate,
            ssl=ssl_context,
            compression=None,
            max_size=1 << 20,
            ping_interval=60,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def _select_subprotocol(self, connection: ServerConnection, offered: Any) -> Any:
        for preferred in self.settings.subprotocols:
            if preferred in offered:
                return preferred
        return None

    @staticmethod
    def station_id(path: str, prefix: str) -> str | None:
        path = path.split("?", 1)[0]
        if not path.startswith(prefix.rstrip("/") + "/"):
            return None
        ident = unquote(path[len(prefix.rstrip("/")) + 1 :])
        return ident if ident and "/" not in ident and len(ident) <= 48 else None

    def _authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        station_id = self.station_id(request.path, self.settings.path_prefix)
        if station_id is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "expected <prefix>/<chargePointId>\n")
        if not self.settings.passwords and self.settings.allow_anonymous:
            return None
        expected = self.settings.passwords.get(station_id)
        header = request.headers.get("Authorization", "")
        user, password = _basic_credentials(header)
        if expected is None or user != station_id or not verify_password(password, expected):
            log.warning("charge point %s refused: bad or missing basic auth credentials", station_id)
            response = connection.respond(HTTPStatus.UNAUTHORIZED, "charge point credentials required\n")
            response.headers["WWW-Authenticate"] = 'Basic realm="ocpp"'
            return response
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        station_id = self.station_id(connection.request.path, self.settings.path_prefix)  # type: ignore[union-attr]
        subprotocol = connection.subprotocol
        if station_id is None or subprotocol not in STATION_CLASSES:
            log.warning("connection without a supported OCPP subprotocol refused (%s)", subprotocol)
            await connection.close(1002, "no supported OCPP subprotocol")
            return
        station = STATION_CLASSES[subprotocol](
            station_id,
            connection,
            self.observer,
            self.clock,
            heartbeat_s=self.settings.heartbeat_interval_s,
            response_timeout=self.settings.response_timeout_s,
        )
        previous = self.registry.stations.get(station_id)
        if previous is not None:
            log.info("charge point %s reconnected; closing its previous connection", station_id)
            await previous._connection.close(1000, "replaced by a new connection")  # type: ignore[attr-defined]
        self.registry.stations[station_id] = station
        await self.registry.changed()
        try:
            await station.serve()
        finally:
            if self.registry.stations.get(station_id) is station:
                del self.registry.stations[station_id]
                for callback in self._on_closed:
                    await callback(station_id)
            await self.registry.changed()


def _basic_credentials(header: str) -> tuple[str, str]:
    """User and password of an RFC 7617 ``Basic`` Authorization header ('' when absent or bad)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        user, _, password = base64.b64decode(token.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password
