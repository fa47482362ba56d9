"""A pure-ASGI fast path in front of FastAPI for the resources 2030.5 clients hit most.

Clients poll their DERControlLists and Time and post MirrorMeterReadings at pollRate and
postRate (2030.5-2018 9.2, 10.5). For such a request in its plain form (digit path ids,
known integer query parameters in range, an identity from the TLS connection or an
in-process caller) the route's own endpoint function is called directly, without FastAPI's
routing and dependency solving. Anything else (other paths, unusual query strings, proxy
mode, no certificate) goes on to FastAPI, which answers with its own validation, so both
ways give the same response.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from derms.adapters.ieee2030_5.scope import DeviceScope

ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HotRoute:
    """``method`` + ``pattern`` (named groups: integer path parameters) → ``endpoint``.

    ``query`` maps each accepted query key to (endpoint argument, largest value); the
    endpoint is called with ``scope=`` the caller's :class:`DeviceScope`, the path and query
    integers, and ``request=`` when ``wants_request``.
    """

    method: str
    pattern: re.Pattern[str]
    endpoint: Callable[..., Awaitable[Response]]
    query: dict[str, tuple[str, int]] = field(default_factory=dict)
    wants_request: bool = False


def _query(raw: bytes, accepted: dict[str, tuple[str, int]]) -> dict[str, int] | None:
    """Integer query arguments, or ``None`` when the query string is anything but plain."""
    out: dict[str, int] = {}
    if not raw:
        return out
    for part in raw.decode("latin-1").split("&"):
        key, _, value = part.partition("=")
        spec = accepted.get(key)
        if spec is None or not value.isdigit() or spec[0] in out or int(value) > spec[1]:
            return None
        out[spec[0]] = int(value)
    return out


def error_response(exc: Exception, statuses: dict[type[Exception], int]) -> Response:
    """The plain-text answer to a refused request: the status of the first listed kind ``exc`` is."""
    status = next(code for kind, code in statuses.items() if isinstance(exc, kind))
    return Response(str(exc), status_code=status, media_type="text/plain")


class HotPaths:
    """ASGI middleware: serves :class:`HotRoute` requests directly, passes the rest to ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        routes: list[HotRoute],
        identity: Callable[[MutableMapping[str, Any]], DeviceScope | None],
        errors: dict[type[Exception], int],
    ) -> None:
        self.app = app
        self._routes = routes
        self._identity = identity
        self._errors = errors
        self._caught = tuple(errors)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for route in self._routes:
                if scope["method"] != route.method:
                    continue
                match = route.pattern.fullmatch(scope["path"])
                if match is None:
                    continue
                args = _query(scope["query_string"], route.query)
                device = self._identity(scope)
                if args is not None and device is not None:
                    await self._serve(route, match, args, device, scope, receive, send)
                    return
                break
        await self.app(scope, receive, send)

    async def _serve(
        self,
        route: HotRoute,
        match: re.Match[str],
        args: dict[str, int],
        device: DeviceScope,
        scope: MutableMapping[str, Any],
        receive: Any,
        send: Any,
    ) -> None:
        args.update((k, int(v)) for k, v in match.groupdict().items())
        if route.wants_request:
            args["request"] = Request(scope, receive)  # type: ignore[assignment]
        try:
            response = await route.endpoint(scope=device, **args)
        except self._caught as exc:
            response = error_response(exc, self._errors)
        await response(scope, receive, send)
