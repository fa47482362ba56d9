"""HTTP routes of the 2030.5 server: thin handlers that parse, call the manager, render.

Every request's identity comes from the TLS client certificate (LFDI per 2030.5-2018 6.3.4),
or, only when ``proxy_header`` is configured, from a PEM certificate a TLS-terminating proxy
forwards in that header. Bodies must be ``application/sep+xml`` of at most 64 KiB.
"""

import functools
import re
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import Annotated, Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from envoy_schema.server.schema.sep2.der import (
    DERAvailability,
    DERSettings,
    DERStatus,
)
from envoy_schema.server.schema.sep2.end_device import EndDeviceRequest
from envoy_schema.server.schema.sep2.log_events import LogEvent
from envoy_schema.server.schema.sep2.metering_mirror import MirrorUsagePoint
from envoy_schema.server.schema.sep2.pub_sub import Subscription
from envoy_schema.server.schema.sep2.response import DERControlResponse as DERControlResponseBody
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic_xml import BaseXmlModel

from derms.adapters.ieee2030_5 import hrefs, mappers
from derms.adapters.ieee2030_5.hot import HotPaths, HotRoute, error_response
from derms.adapters.ieee2030_5.identity import lfdi_from_cert_der, sfdi_from_lfdi
from derms.adapters.ieee2030_5.manager import Manager
from derms.adapters.ieee2030_5.mirror_xml import parse_mirror_readings
from derms.adapters.ieee2030_5.notifier import INTERNAL_SCOPE
from derms.adapters.ieee2030_5.schema import (
    MAX_BODY_BYTES,
    SEP_XML,
    DERCapability,
    XmlRejected,
    parse,
    render,
)
from derms.adapters.ieee2030_5.scope import CertificateScope, DeviceScope
from derms.adapters.ieee2030_5.tls import client_cert_der, client_lfdi
from derms.core.errors import NotFound, ValidationFailed

DEFAULT_LIMIT = 1
"""2030.5-2018 4.2.1: a list GET without ``l`` returns one item."""
MAX_LIMIT = 255
RENDER_CACHE_SIZE = 20_000


class Forbidden(Exception):
    """No acceptable client certificate."""


ERROR_STATUS: dict[type[Exception], int] = {
    NotFound: 404,
    ValidationFailed: 400,
    XmlRejected: 400,
    Forbidden: 403,
}
"""Plain-text status of a refused request, for FastAPI's handlers and the fast path alike."""


def _xml(resource: BaseXmlModel, status: int = 200) -> Response:
    return Response(render(resource), status_code=status, media_type=SEP_XML)


def _created(location: str, created: bool) -> Response:
    return Response(status_code=201 if created else 204, headers={"Location": location})


async def _body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
        raise XmlRejected(f"Content-Length {length} exceeds the {MAX_BODY_BYTES} byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise XmlRejected(f"body exceeds the {MAX_BODY_BYTES} byte limit")
        chunks.append(chunk)
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in (SEP_XML, "application/xml", "text/xml"):
        raise XmlRejected(f"Content-Type {content_type!r} is not {SEP_XML}")
    return b"".join(chunks)


sfdi = functools.lru_cache(maxsize=65_536)(sfdi_from_lfdi)


def create_app(
    manager: Manager,
    *,
    proxy_header: str | None = None,
    proxy_hosts: frozenset[str] = frozenset({"127.0.0.1", "::1"}),
) -> FastAPI:
    """The 2030.5 server as an ASGI app around ``manager``.

    ``proxy_header`` names the header in which a TLS-terminating proxy at one of
    ``proxy_hosts`` forwards the client certificate (URL-encoded PEM); off by default.
    """
    app = FastAPI(
        title="derms IEEE 2030.5 server",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry={
            "tracing": False,
            "metrics": False,
            "logs": False,
        },  # device-facing: no per-request OTel check
    )
    repo = manager.repo
    policy = manager.policy

    async def _refused(_: Request, exc: Exception) -> Response:
        return error_response(exc, ERROR_STATUS)

    for kind in ERROR_STATUS:
        app.add_exception_handler(kind, _refused)

    def connection_identity(asgi_scope: MutableMapping[str, Any]) -> CertificateScope | None:
        """Identity of an in-process caller or of the TLS connection's certificate, if either."""
        internal = asgi_scope.get("extensions", {}).get(INTERNAL_SCOPE)
        if isinstance(internal, str):  # in-process caller (notifications); not settable over HTTP
            return CertificateScope(internal, sfdi(internal), "internal")
        lfdi = client_lfdi(asgi_scope)
        return None if lfdi is None else CertificateScope(lfdi, sfdi(lfdi), "tls")

    def certificate(request: Request) -> CertificateScope:
        known = connection_identity(request.scope)
        if known is not None:
            return known
        der = client_cert_der(request.scope)
        source = "tls"
        peer = request.client.host if request.client else ""
        if der is None and proxy_header and peer in proxy_hosts:
            pem = request.headers.get(proxy_header)
            if pem:
                try:
                    der = x509.load_pem_x509_certificate(unquote(pem).encode()).public_bytes(Encoding.DER)
                except ValueError as exc:
                    raise Forbidden(f"unreadable certificate in {proxy_header}") from exc
                source = "proxy"
        if der is None:
            raise Forbidden("a client certificate is required")
        lfdi = lfdi_from_cert_der(der)
        return CertificateScope(lfdi, sfdi_from_lfdi(lfdi), source)

    async def device_scope(request: Request) -> DeviceScope:
        return repo.scope_for(certificate(request))

    Scope = Annotated[DeviceScope, Depends(device_scope)]
    Start = Annotated[int, Query(alias="s", ge=0)]
    After = Annotated[int, Query(alias="a", ge=0)]
    Limit = Annotated[int, Query(alias="l", ge=0, le=MAX_LIMIT)]

    async def read(request: Request, model: type[BaseXmlModel]) -> BaseXmlModel:
        return parse(await _body(request), model)

    @app.get(hrefs.DCAP)
    async def dcap(scope: Scope) -> Response:
        return _xml(
            mappers.device_capability(policy.poll_rate, len(scope.edev_ids), len(repo.mups_for(scope)))
        )

    @app.get(hrefs.TIME)
    async def time(scope: Scope) -> Response:
        now = manager.now()
        if time_cache[0] != now:  # the resource changes once a second; render it once a second
            time_cache[:] = [now, render(mappers.time_resource(now))]
        return Response(time_cache[1], media_type=SEP_XML)

    time_cache: list = [None, b""]

    # --- EndDevice, Registration, FSA ---------------------------------------------------
    def edev_resource(scope: DeviceScope, edev_id: int) -> object:
        edev = repo.end_device(scope, edev_id)
        return mappers.end_device(
            edev,
            len(repo.programs_for(edev)),
            len(repo.subscriptions_of(scope, edev_id)),
            len(repo.log_events.get(edev_id, ())),
        )

    @app.get(hrefs.EDEV_LIST)
    async def edev_list(scope: Scope, s: Start = 0, a: After = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
        devices = [d for d in repo.visible_end_devices(scope) if d.changed_time >= a]
        items = [edev_resource(scope, d.id) for d in mappers.page(devices, s, limit)]
        return _xml(mappers.end_device_list(items, len(devices), policy.poll_rate))  # type: ignore[arg-type]

    @app.post(hrefs.EDEV_LIST)
    async def edev_register(request: Request, scope: Scope) -> Response:
        body = await read(request, EndDeviceRequest)
        edev_id, created = await manager.register_in_band(scope, body)  # type: ignore[arg-type]
        return _created(hrefs.edev(edev_id), created)

    @app.get("/edev/{edev_id}")
    async def edev(scope: Scope, edev_id: int) -> Response:
        return _xml(edev_resource(scope, edev_id))  # type: ignore[arg-type]

    @app.get("/edev/{edev_id}/reg")
    async def registration(scope: Scope, edev_id: int) -> Response:
        return _xml(mappers.registration(repo.end_device(scope, edev_id), policy.poll_rate))

    @app.get("/edev/{edev_id}/fsa")
    async def fsa_list(scope: Scope, edev_id: int, s: Start = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
        edev = repo.end_device(scope, edev_id)
        n = len(repo.programs_for(edev))
        items = [mappers.function_set_assignments(edev, n, policy.pen)] if n else []
        return _xml(mappers.fsa_list(edev, mappers.page(items, s, limit), len(items), policy.poll_rate))

    @app.get("/edev/{edev_id}/fsa/1")
    async def fsa(scope: Scope, edev_id: int) -> Response:
        edev = repo.end_device(scope, edev_id)
        n = len(repo.programs_for(edev))
        if not n:
            raise NotFound("FunctionSetAssignments", 1)
        return _xml(mappers.function_set_assignments(edev, n, policy.pen))

    # --- DERProgram, DERControl, DefaultDERControl, DERCurve ----------------------------
    def program_resource(edev_id: int, program_id: int, scope: DeviceScope) -> object:
        edev = repo.end_device(scope, edev_id)
        program = repo.program_for(edev, program_id)
        states = manager.control_states(edev, program)
        active = sum(1 for _, st in states if st.status == 1)
        return mappers.program(edev_id, program, len(states), active, len(repo.curves_of(program_id)))

    @app.get("/edev/{edev_id}/derp")
    async def derp_list(scope: Scope, edev_id: int, s: Start = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
        programs = repo.programs_for(repo.end_device(scope, edev_id))
        items = [program_resource(edev_id, p.id, scope) for p in mappers.page(programs, s, limit)]
        return _xml(mappers.program_list(edev_id, items, len(programs), policy.poll_rate))  # type: ignore[arg-type]

    @app.get("/edev/{edev_id}/derp/{program_id}")
    async def derp(scope: Scope, edev_id: int, program_id: int) -> Response:
        return _xml(program_resource(edev_id, program_id, scope))  # type: ignore[arg-type]

    rendered: OrderedDict[tuple[object, ...], bytes] = OrderedDict()

    def control_page(href: str, edev_id: int, listed: list, start: int, limit: int) -> Response:
        """A DERControl list page; rendering is memoised on (page, each event's version and state).

        The XML is a pure function of that key, so polls between changes reuse it.
        """
        page = mappers.page(listed, start, limit)
        key = (href, len(listed), tuple((c.id, c.version, st) for c, st in page))
        body = rendered.get(key)
        if body is None:
            items = [mappers.control(edev_id, c, st) for c, st in page]
            body = render(mappers.control_list(href, items, len(listed)))
            rendered[key] = body
            if len(rendered) > RENDER_CACHE_SIZE:
                rendered.popitem(last=False)
        return Response(body, media_type=SEP_XML)

    def controls(scope: DeviceScope, edev_id: int, program_id: int, active_only: bool) -> list:
        edev = repo.end_device(scope, edev_id)
        program = repo.program_for(edev, program_id)
        states = manager.control_states(edev, program)
        return [(c, st) for c, st in states if not active_only or st.status == 1]

    @app.get("/edev/{edev_id}/derp/{program_id}/derc")
    async def derc_list(
        scope: Scope, edev_id: int, program_id: int, s: Start = 0, limit: Limit = DEFAULT_LIMIT
    ) -> Response:
        listed = controls(scope, edev_id, program_id, False)
        return control_page(hrefs.derc_list(edev_id, program_id), edev_id, listed, s, limit)

    @app.get("/edev/{edev_id}/derp/{program_id}/actderc")
    async def actderc_list(
        scope: Scope, edev_id: int, program_id: int, s: Start = 0, limit: Limit = DEFAULT_LIMIT
    ) -> Response:
        listed = controls(scope, edev_id, program_id, True)
        return control_page(hrefs.actderc(edev_id, program_id), edev_id, listed, s, limit)

    @app.get("/edev/{edev_id}/derp/{program_id}/derc/{control_id}")
    async def derc(scope: Scope, edev_id: int, program_id: int, control_id: int) -> Response:
        for c, st in controls(scope, edev_id, program_id, False):
            if c.id == control_id:
                return _xml(mappers.control(edev_id, c, st))
        raise NotFound("DERControl", control_id)

    @app.get("/edev/{edev_id}/derp/{program_id}/dderc")
    async def dderc(scope: Scope, edev_id: int, program_id: int) -> Response:
        program = repo.program_for(repo.end_device(scope, edev_id), program_id)
        if program.default is None:
            raise NotFound("DefaultDERControl", program_id)
        return _xml(mappers.default_control(edev_id, program))

    @app.get("/edev/{edev_id}/derp/{program_id}/dc")
    async def curve_list(
        scope: Scope, edev_id: int, program_id: int, s: Start = 0, limit: Limit = DEFAULT_LIMIT
    ) -> Response:
        repo.program_for(repo.end_device(scope, edev_id), program_id)
        curves = repo.curves_of(program_id)
        items = [mappers.curve(edev_id, c) for c in mappers.page(curves, s, limit)]
        return _xml(mappers.curve_list(hrefs.curve_list(edev_id, program_id), items, len(curves)))

    @app.get("/edev/{edev_id}/derp/{program_id}/dc/{curve_id}")
    async def curve(scope: Scope, edev_id: int, program_id: int, curve_id: int) -> Response:
        repo.program_for(repo.end_device(scope, edev_id), program_id)
        record = repo.curves.get(curve_id)
        if record is None or record.program_id != program_id:
            raise NotFound("DERCurve", curve_id)
        return _xml(mappers.curve(edev_id, record))

    # --- DER and its parts ----------------------------------------------------------------
    @app.get("/edev/{edev_id}/der")
    async def der_list(scope: Scope, edev_id: int, s: Start = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
        edev = repo.end_device(scope, edev_id)
        programs = repo.programs_for(edev)
        items = [mappers.der(edev, programs[0].id if programs else None)]
        return _xml(mappers.der_list(edev, mappers.page(items, s, limit), policy.poll_rate))

    @app.get(f"/edev/{{edev_id}}/der/{hrefs.DER_ID}")
    async def der(scope: Scope, edev_id: int) -> Response:
        edev = repo.end_device(scope, edev_id)
        programs = repo.programs_for(edev)
        return _xml(mappers.der(edev, programs[0].id if programs else None))

    parts: dict[str, tuple[str, type[BaseXmlModel]]] = {
        "dercap": ("capability", DERCapability),
        "derg": ("settings", DERSettings),
        "ders": ("status", DERStatus),
        "dera": ("availability", DERAvailability),
    }

    def part_routes(part: str, attr: str, model: type[BaseXmlModel]) -> None:
        path = f"/edev/{{edev_id}}/der/{hrefs.DER_ID}/{part}"

        async def get_part(scope: Scope, edev_id: int) -> Response:
            value = getattr(repo.end_device(scope, edev_id), attr)
            if value is None:
                raise NotFound(model.__name__, edev_id)
            value.href = hrefs.der_part(edev_id, part)
            return _xml(value)

        async def put_part(request: Request, scope: Scope, edev_id: int) -> Response:
            repo.end_device(scope, edev_id)
            body = await read(request, model)
            await manager.put_der_part(scope, edev_id, body)  # type: ignore[arg-type]
            return Response(status_code=204)

        app.add_api_route(path, get_part, methods=["GET"])
        app.add_api_route(path, put_part, methods=["PUT", "POST"])

    for part, (attr, model) in parts.items():
        part_routes(part, attr, model)

    # --- MirrorUsagePoint ---------------------------------------------------------------
    @app.get(hrefs.MUP_LIST)
    async def mup_list(scope: Scope, s: Start = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
        mups = repo.mups_for(scope)
        items = [mappers.mup(m, policy.post_rate) for m in mappers.page(mups, s, limit)]
        return _xml(mappers.mup_list(items, len(mups), policy.poll_rate))

    @app.post(hrefs.MUP_LIST)
    async def mup_create(request: Request, scope: Scope) -> Response:
        body = await read(request, MirrorUsagePoint)
        mup_id, created = await manager.create_mup(scope, body)  # type: ignore[arg-type]
        return _created(hrefs.mup(mup_id), created)

    @app.get("/mup/{mup_id}")
    async def mup(scope: Scope, mup_id: int) -> Response:
        return _xml(mappers.mup(repo.mup(scope, mup_id), policy.post_rate))

    @app.post("/mup/{mup_id}")
    async def mup_post(request: Request, scope: Scope, mup_id: int) -> Response:
        repo.mup(scope, mup_id)
        readings = parse_mirror_readings(await _body(request))
        await manager.post_readings(scope, mup_id, readings)
        return Response(status_code=201, headers={"Location": hrefs.mup(mup_id)})

    # --- Response, LogEvent, Subscription ------------------------------------------------
    @app.get(hrefs.RSPS_LIST)
    async def response_sets(scope: Scope, s: Start = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
        items = [mappers.response_set(policy.pen, len(repo.responses_for(scope)))]
        return _xml(mappers.response_set_list(mappers.page(items, s, limit), policy.poll_rate))

    @app.get(hrefs.RESPONSE_SET)
    async def response_set(scope: Scope) -> Response:
        return _xml(mappers.response_set(policy.pen, len(repo.responses_for(scope))))

    @app.get(hrefs.RESPONSES)
    async def response_list(scope: Scope, s: Start = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
        records = repo.responses_for(scope)
        items = [
            mappers.response(r, repo.end_devices[r.edev_id].lfdi) for r in mappers.page(records, s, limit)
        ]
        return _xml(mappers.response_list(items, len(records)))

    @app.post(hrefs.RESPONSES)
    async def response_post(request: Request, scope: Scope) -> Response:
        body = await read(request, DERControlResponseBody)
        record = await manager.post_response(scope, body)  # type: ignore[arg-type]
        return _created(f"{hrefs.RESPONSES}/{record.id}", True)

    @app.get("/edev/{edev_id}/lel")
    async def lel(
        scope: Scope, edev_id: int, s: Start = 0, a: After = 0, limit: Limit = DEFAULT_LIMIT
    ) -> Response:
        repo.end_device(scope, edev_id)
        events = [e for e in repo.log_events.get(edev_id, []) if e.created >= a]
        items = [mappers.log_event(edev_id, e) for e in mappers.page(events, s, limit)]
        return _xml(mappers.log_event_list(edev_id, items, len(events), policy.poll_rate))

    @app.post("/edev/{edev_id}/lel")
    async def lel_post(request: Request, scope: Scope, edev_id: int) -> Response:
        body = await read(request, LogEvent)
        record = manager.post_log_event(scope, edev_id, body)  # type: ignore[arg-type]
        return _created(f"{hrefs.lel(edev_id)}/{record.id}", True)

    @app.get("/edev/{edev_id}/sub")
    async def sub_list(scope: Scope, edev_id: int, s: Start = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
        subs = repo.subscriptions_of(scope, edev_id)
        items = [mappers.subscription(x) for x in mappers.page(subs, s, limit)]
        return _xml(mappers.subscription_list(edev_id, items, len(subs)))

    @app.post("/edev/{edev_id}/sub")
    async def sub_post(request: Request, scope: Scope, edev_id: int) -> Response:
        body = await read(request, Subscription)
        record = manager.subscribe(scope, edev_id, body)  # type: ignore[arg-type]
        return _created(hrefs.sub(edev_id, record.id), True)

    @app.get("/edev/{edev_id}/sub/{sub_id}")
    async def sub(scope: Scope, edev_id: int, sub_id: int) -> Response:
        return _xml(mappers.subscription(repo.subscription(scope, edev_id, sub_id)))

    @app.delete("/edev/{edev_id}/sub/{sub_id}")
    async def sub_delete(scope: Scope, edev_id: int, sub_id: int) -> Response:
        manager.unsubscribe(scope, edev_id, sub_id)
        return Response(status_code=204)

    def hot_identity(asgi_scope: MutableMapping[str, Any]) -> DeviceScope | None:
        known = connection_identity(asgi_scope)
        return None if known is None else repo.scope_for(known)

    page = {"s": ("s", 2**31), "l": ("limit", MAX_LIMIT)}
    program_path = r"/edev/(?P<edev_id>[0-9]{1,18})/derp/(?P<program_id>[0-9]{1,18})"
    app.add_middleware(
        HotPaths,  # type: ignore[arg-type]
        routes=[
            HotRoute("GET", re.compile(re.escape(hrefs.TIME)), time),
            HotRoute("GET", re.compile(f"{program_path}/derc"), derc_list, page),
            HotRoute("GET", re.compile(f"{program_path}/actderc"), actderc_list, page),
            HotRoute("POST", re.compile(r"/mup/(?P<mup_id>[0-9]{1,18})"), mup_post, wants_request=True),
        ],
        identity=hot_identity,
        errors=ERROR_STATUS,
    )
    return app
