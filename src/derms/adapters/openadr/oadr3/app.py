"""HTTP routes of the 3.0.1 VTN (``paths`` of ``openadr3.yaml`` 3.0.1) as a Starlette app.

Errors are the specification's ``problem`` objects (``type``, ``title``, ``status``,
``detail``); a body that is not JSON or does not match the schema gets 400 and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from derms.adapters.openadr.oadr3.auth import SCOPES, AuthError, Client, Principal, TokenIssuer
from derms.adapters.openadr.oadr3.models import MODELS, Event, Report, Resource, Stored, Subscription
from derms.adapters.openadr.oadr3.store import Vtn3Store
from derms.adapters.openadr.oadr3.vtn import Conflict, Forbidden, Missing, Vtn3
from derms.adapters.openadr.oadr3.webhooks import RetryPolicy
from derms.core.clock import Clock

BASE_PATH = "/openadr3/3.0.1"
MAX_BODY = 1024 * 1024
_COLLECTIONS = {
    "programs": "PROGRAM",
    "events": "EVENT",
    "reports": "REPORT",
    "subscriptions": "SUBSCRIPTION",
    "vens": "VEN",
}


def problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": title, "status": status, "detail": detail}, status)


def _principal_factory(issuer: TokenIssuer) -> Callable[[str], Principal | None]:
    def principal_of(client_id: str) -> Principal | None:
        client = issuer.clients.get(client_id)
        if client is None:
            return None
        return Principal(client.client_id, client.role, client.ven_name, SCOPES[client.role])

    return principal_of


def build(
    clients: list[Client], clock: Clock, store: Vtn3Store | None = None, retry: RetryPolicy | None = None
) -> tuple[Starlette, Vtn3, TokenIssuer]:
    """The app, its VTN and token issuer; with ``store`` the VTN reloads its objects and writes
    through; ``retry`` governs webhook delivery."""
    issuer = TokenIssuer(clients, clock)
    vtn = Vtn3(clock, _principal_factory(issuer), store=store, retry=retry)

    def guarded(
        handler: Callable[[Request, Principal], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            principal = issuer.principal(request.headers.get("authorization"))
            if principal is None:
                return problem(403, "Forbidden", "missing, unknown or expired bearer token")
            try:
                return await handler(request, principal)
            except Forbidden as exc:
                return problem(403, "Forbidden", str(exc))
            except Missing as exc:
                return problem(404, "Not Found", str(exc))
            except Conflict as exc:
                return problem(409, "Conflict", str(exc))
            except _BadRequest as exc:
                return problem(400, "Bad Request", str(exc))
            except SQLAlchemyError as exc:
                return problem(
                    503, "Service Unavailable", f"storage failed, nothing changed: {exc.__class__.__name__}"
                )

        return endpoint

    async def token(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "invalid_request", "error_description": "body too large"}, 400)
        try:
            form = dict(parse_qsl(body.decode(), strict_parsing=False))
        except UnicodeDecodeError:
            return JSONResponse({"error": "invalid_request", "error_description": "not form-urlencoded"}, 400)
        try:
            return JSONResponse(issuer.issue(form))
        except AuthError as exc:
            return JSONResponse({"error": exc.error, "error_description": exc.description}, exc.status)

    async def collection(request: Request, principal: Principal) -> Response:
        kind, extra = _kind(request)
        if request.method == "GET":
            skip, limit = _paging(request)
            filters = _filters(request, kind, extra)
            return JSONResponse([o.wire() for o in vtn.search(principal, kind, filters, skip, limit)])
        obj = await _body(request, kind, extra)
        return JSONResponse(vtn.create(principal, kind, obj).wire(), 201)

    async def item(request: Request, principal: Principal) -> Response:
        kind, extra = _kind(request)
        object_id = request.path_params["object_id"]
        if request.method == "GET":
            return JSONResponse(vtn.get(principal, kind, object_id).wire())
        if request.method == "DELETE":
            return JSONResponse(vtn.delete(principal, kind, object_id).wire())
        obj = await _body(request, kind, extra)
        return JSONResponse(vtn.update(principal, kind, object_id, obj).wire())

    routes = [Route(f"{BASE_PATH}/auth/token", token, methods=["POST"])]
    for name in _COLLECTIONS:
        routes.append(Route(f"{BASE_PATH}/{name}", guarded(collection), methods=["GET", "POST"]))
        routes.append(
            Route(f"{BASE_PATH}/{name}/{{object_id}}", guarded(item), methods=["GET", "PUT", "DELETE"])
        )
    routes.append(
        Route(f"{BASE_PATH}/vens/{{ven_id}}/resources", guarded(collection), methods=["GET", "POST"])
    )
    routes.append(
        Route(
            f"{BASE_PATH}/vens/{{ven_id}}/resources/{{object_id}}",
            guarded(item),
            methods=["GET", "PUT", "DELETE"],
        )
    )
    return Starlette(routes=routes), vtn, issuer


class _BadRequest(Exception):
    pass


def _kind(request: Request) -> tuple[str, dict[str, str]]:
    if "ven_id" in request.path_params:
        return "RESOURCE", {"ven_id": request.path_params["ven_id"]}
    segment = request.url.path[len(BASE_PATH) + 1 :].split("/", 1)[0]
    return _COLLECTIONS[segment], {}


def _paging(request: Request) -> tuple[int, int]:
    try:
        skip = int(request.query_params.get("skip", 0))
        limit = int(request.query_params.get("limit", 50))
    except ValueError as exc:
        raise _BadRequest("skip and limit must be integers") from exc
    if skip < 0 or not 0 <= limit <= 50:
        raise _BadRequest("skip must be >= 0 and limit within 0..50")
    return skip, limit


def _filters(request: Request, kind: str, extra: dict[str, str]) -> Callable[[Stored], bool]:
    q = request.query_params
    program_id = q.get("programID")
    event_id = q.get("eventID")
    client_name = q.get("clientName")
    target_type = q.get("targetType")
    target_values = set(q.getlist("targetValues"))
    ven_id = extra.get("ven_id")

    def keep(obj: Stored) -> bool:
        if program_id and getattr(obj, "program_id", program_id) != program_id:
            return False
        if event_id and isinstance(obj, Report) and obj.event_id != event_id:
            return False
        if client_name and isinstance(obj, Report | Subscription) and obj.client_name != client_name:
            return False
        if ven_id is not None and isinstance(obj, Resource) and obj.ven_id != ven_id:
            return False
        if target_type:
            targets = getattr(obj, "targets", None) or []
            return any(t.type == target_type and target_values & {str(v) for v in t.values} for t in targets)
        return True

    return keep


async def _body(request: Request, kind: str, extra: dict[str, str]) -> Stored:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise _BadRequest("body too large")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _BadRequest("the body must be a JSON object")
    try:
        obj = MODELS[kind].model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise _BadRequest(problems) from exc
    if isinstance(obj, Resource):
        obj = obj.model_copy(update={"ven_id": extra["ven_id"]})
    if isinstance(obj, Event) and not obj.intervals:
        raise _BadRequest("an event needs at least one interval")
    return obj
