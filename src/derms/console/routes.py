"""The console's routes: pages under ``/console``, JSON and SSE under ``/console/api``.

Pages are rendered on the server (Jinja2); one small hand-written script keeps them live from
the server-sent event stream and posts actions as JSON. Viewers get pages without controls,
and every action route requires the operator role on the server as well.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from derms.api.auth import Principal, Role, Unauthenticated, principal_for_token
from derms.console import actions, plots, reports
from derms.console.drill import drill_view
from derms.console.grid_view import GridView
from derms.console.monitor import ConsoleMonitor
from derms.console.session import COOKIE, ConsoleOperator, ConsoleViewer, session_principal
from derms.core.errors import NotFound
from derms.fleet import rollup
from derms.runtime import Runtime

HERE = Path(__file__).parent
STATIC = HERE / "static"
STATIC_FILES = {p.name: p for p in STATIC.iterdir() if p.suffix in (".js", ".css")}
STATIC_VERSION = {
    name: hashlib.sha256(path.read_bytes()).hexdigest()[:12] for name, path in STATIC_FILES.items()
}
MEDIA = {".js": "text/javascript", ".css": "text/css"}
STREAM_PERIOD_S = 1.0

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["static"] = lambda name: f"/console/static/{name}?v={STATIC_VERSION[name]}"
templates.env.filters["kw"] = lambda w: "—" if w is None else f"{w / 1e3:,.1f}"

router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)
_start_lock = asyncio.Lock()


async def monitor_of(request: Request) -> ConsoleMonitor:
    return await attach(request.app)


async def attach(app: Any) -> ConsoleMonitor:
    """The app's console monitor, created and started on first use (or by the caller at
    start-up, so that the console watches from the beginning)."""
    state = app.state
    monitor = getattr(state, "console_monitor", None)
    if monitor is None:
        async with _start_lock:
            monitor = getattr(state, "console_monitor", None)
            if monitor is None:
                rt: Runtime = state.runtime
                monitor = ConsoleMonitor(rt)
                if rt.network is not None and getattr(rt.network, "net", None) is not None:
                    monitor.grid = GridView(rt)
                    monitor.sample()
                await monitor.start()
                state.console_monitor = monitor
    return monitor


def _page_principal(request: Request) -> Principal | None:
    try:
        return session_principal(request)
    except Unauthenticated:
        return None


def _render(request: Request, name: str, principal: Principal, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {
            "user": principal,
            "role": principal.role.name.lower(),
            "can_control": principal.role >= Role.OPERATOR,
            **context,
        },
    )


# -- session -------------------------------------------------------------------------------


class LoginIn(BaseModel):
    token: str = Field(min_length=1, max_length=200)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {})


@router.post("/api/session")
def login(request: Request, body: LoginIn, response: Response) -> dict[str, str]:
    rt: Runtime = request.app.state.runtime
    with rt.engine.connect() as conn:
        principal = principal_for_token(conn, body.token.strip(), rt.clock.now())
    response.set_cookie(
        COOKIE,
        body.token.strip(),
        httponly=True,
        samesite="strict",
        path="/console",
        secure=request.url.scheme == "https",
    )
    return {"username": principal.username, "role": principal.role.name.lower()}


@router.post("/api/logout")
def logout(response: Response) -> dict[str, bool]:
    response.delete_cookie(COOKIE, path="/console")
    return {"ok": True}


@router.get("/static/{name}")
def static(name: str) -> Response:
    path = STATIC_FILES.get(name)
    if path is None:
        raise NotFound("asset", name)
    return Response(
        path.read_bytes(),
        media_type=MEDIA[path.suffix],
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


# -- state ---------------------------------------------------------------------------------


def _scoped_records(rt: Runtime, principal: Principal) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    fleet = rt.fleet
    mask = None
    if principal.scope.tenant_id is not None:
        tid = fleet.tenant_ids.index(principal.tenant_id) if principal.tenant_id in fleet.tenant_ids else -2
        mask = fleet.tenant == tid
    r = rollup(fleet, mask)
    return [rec for rec in r.records() if rec["ders"] > 0], r.fleet()


def state_payload(monitor: ConsoleMonitor, principal: Principal) -> dict[str, Any]:
    rt = monitor.rt
    records, fleet = _scoped_records(rt, principal)
    live_commands = [c for c in monitor.commands.values() if c.state in ("sent", "acknowledged", "active")]
    by_feeder: dict[str | None, int] = {}
    for c in live_commands:
        by_feeder[c.feeder_id] = by_feeder.get(c.feeder_id, 0) + 1
    for rec in records:
        rec["active_commands"] = by_feeder.get(rec["feeder_id"], 0)
        rec["events"] = [
            f"dispatch {d.id} ({d.direction} {d.target_w / 1e3:.0f} kW)"
            for d in monitor.dispatches
            if d.feeder_id == rec["feeder_id"] and rt.clock.now() <= d.end_at
        ] + [
            f"{o['kind']} {o['id']}" + ("" if o["active"] else " (upcoming)")
            for o in monitor.objectives_for(rec["feeder_id"])
            if rec["feeder_id"] is not None
        ]
    incident = monitor.incidents[-1] if monitor.incidents else None
    return {
        "at": rt.clock.now().isoformat(),
        "version": monitor.version,
        "fleet": fleet,
        "feeders": records,
        "alarms": [a.as_dict() for a in monitor.open_alarms()[-50:]],
        "objectives": [
            o
            for o in monitor.objectives_for(None)
            if principal.is_utility or o.get("tenant_id") == principal.tenant_id
        ],
        "incident": None
        if incident is None
        else {"id": incident.id, "devices": len(incident.rows), "active": incident.active},
        "grid": monitor.grid.live() if monitor.grid is not None and principal.is_utility else None,
    }


@router.get("/api/state")
async def api_state(request: Request, principal: ConsoleViewer) -> dict[str, Any]:
    return state_payload(await monitor_of(request), principal)


@router.get("/api/stream")
async def api_stream(request: Request, principal: ConsoleViewer) -> StreamingResponse:
    """Server-sent events: the state payload once a second (and the drill when one is open)."""
    monitor = await monitor_of(request)

    async def events() -> Any:
        while not await request.is_disconnected():
            payload = state_payload(monitor, principal)
            if monitor.incidents and principal.is_utility:
                payload["drill"] = drill_view(monitor)
            yield f"event: state\ndata: {json.dumps(payload, default=str)}\n\n"
            await asyncio.sleep(STREAM_PERIOD_S)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/api/drill")
async def api_drill(request: Request, principal: ConsoleViewer) -> dict[str, Any]:
    monitor = await monitor_of(request)
    if not principal.is_utility:
        return {"incident": None, "feeders": [], "actions": []}
    return drill_view(monitor)


@router.get("/api/commands")
async def api_commands(request: Request, principal: ConsoleViewer, limit: int = 200) -> list[dict[str, Any]]:
    monitor = await monitor_of(request)
    fleet = monitor.rt.fleet
    out = []
    monitor.label_sources(list(monitor.commands.values())[-limit:])
    for c in reversed(monitor.commands.values()):
        row = fleet.index.get(c.der_id)
        if principal.scope.tenant_id is not None and (
            row is None or fleet.tenant_ids[fleet.tenant[row]] != principal.tenant_id
        ):
            continue
        out.append(c.as_dict())
        if len(out) >= limit:
            break
    return out


# -- actions -------------------------------------------------------------------------------


class OverrideIn(BaseModel):
    der_id: str
    control: dict[str, Any]
    duration_s: float = 900.0
    reason: str = "operator override"


class CancelIn(BaseModel):
    command_id: str


class DispatchIn(BaseModel):
    feeder_id: str
    target_w: float = Field(gt=0)
    direction: str = "up"
    duration_s: float = Field(default=900.0, gt=0, le=86_400)
    kinds: list[str] | None = None


class SwitchIn(BaseModel):
    switch_id: str
    closed: bool


class OutageIn(BaseModel):
    branch_id: str
    out: bool = True
    note: str = ""


class OptOutIn(BaseModel):
    site_id: str
    opt_out: bool = True


class AckIn(BaseModel):
    alarm_id: int


@router.post("/api/override")
async def post_override(request: Request, body: OverrideIn, principal: ConsoleOperator) -> dict[str, str]:
    monitor = await monitor_of(request)
    cid = await actions.override(
        monitor.rt, monitor, principal, body.der_id, body.control, body.duration_s, body.reason
    )
    return {"command_id": cid}


@router.post("/api/cancel")
async def post_cancel(request: Request, body: CancelIn, principal: ConsoleOperator) -> dict[str, str]:
    monitor = await monitor_of(request)
    return {"command_id": await actions.cancel(monitor.rt, monitor, principal, body.command_id)}


@router.post("/api/dispatch")
async def post_dispatch(request: Request, body: DispatchIn, principal: ConsoleOperator) -> dict[str, Any]:
    monitor = await monitor_of(request)
    event = await actions.dispatch_feeder(
        monitor.rt,
        monitor,
        principal,
        body.feeder_id,
        body.target_w,
        body.direction,
        body.duration_s,
        body.kinds,
    )
    return event.as_dict()


@router.post("/api/switch")
async def post_switch(request: Request, body: SwitchIn, principal: ConsoleOperator) -> dict[str, Any]:
    monitor = await monitor_of(request)
    return await actions.set_switch(monitor.rt, principal, body.switch_id, body.closed)


@router.post("/api/outage")
async def post_outage(request: Request, body: OutageIn, principal: ConsoleOperator) -> dict[str, Any]:
    monitor = await monitor_of(request)
    return await actions.planned_outage(monitor.rt, principal, body.branch_id, body.out, body.note)


@router.post("/api/opt-out")
async def post_opt_out(request: Request, body: OptOutIn, principal: ConsoleOperator) -> dict[str, Any]:
    monitor = await monitor_of(request)
    return {"ders": actions.opt_out_site(monitor.rt, principal, body.site_id, body.opt_out)}


@router.post("/api/ack")
async def post_ack(request: Request, body: AckIn, principal: ConsoleOperator) -> dict[str, Any]:
    monitor = await monitor_of(request)
    return actions.acknowledge(monitor.rt, monitor, principal, body.alarm_id)


# -- pages ---------------------------------------------------------------------------------


def _login_redirect() -> RedirectResponse:
    return RedirectResponse("/console/login", status_code=303)


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request) -> Response:
    principal = _page_principal(request)
    if principal is None:
        return _login_redirect()
    monitor = await monitor_of(request)
    state = state_payload(monitor, principal)
    return _render(request, "overview.html", principal, state=state, page="overview")


@router.get("/feeders/{feeder_id}", response_class=HTMLResponse)
async def feeder_page(request: Request, feeder_id: str) -> Response:
    principal = _page_principal(request)
    if principal is None:
        return _login_redirect()
    monitor = await monitor_of(request)
    rt = monitor.rt
    if feeder_id not in rt.fleet.feeder_ids:
        raise NotFound("feeder", feeder_id)
    grid = monitor.grid if principal.is_utility else None
    schematic = (
        grid.schematic(feeder_id) if grid is not None and feeder_id in grid.model.feeders.index else None
    )
    state = state_payload(monitor, principal)
    record = next((r for r in state["feeders"] if r["feeder_id"] == feeder_id), None)
    return _render(
        request,
        "feeder.html",
        principal,
        page="feeder",
        feeder_id=feeder_id,
        record=record,
        state=state,
        schematic=schematic,
        load_plot=feeder_load_plot(monitor, feeder_id),
        voltage_plot=voltage_plot(monitor, feeder_id) if grid is not None else "",
        switches=_switches(rt) if grid is not None else [],
    )


def _switches(rt: Runtime) -> list[dict[str, Any]]:
    sw = rt.network.switches
    return [
        {"id": str(i), "closed": bool(r["closed"]), "bus": str(r["bus"]), "element": str(r["element"])}
        for i, r in sw.iterrows()
    ]


def _hours(monitor: ConsoleMonitor) -> np.ndarray:
    if not monitor.history:
        return np.zeros(0)
    t0 = monitor.history[0]["at"].replace(hour=0, minute=0, second=0, microsecond=0)
    return np.array([(p["at"] - t0).total_seconds() / 3600 for p in monitor.history])


def feeder_load_plot(monitor: ConsoleMonitor, feeder_id: str) -> str:
    """Feeder load (power drawn from upstream, from the power flow) against a persistence
    forecast (:func:`derms.forecast.naive.persistence`, one step ahead) and the substation
    transformer rating."""
    from derms.forecast.naive import persistence

    hours = _hours(monitor)
    key = "substation_p_w" if monitor.grid is not None else "feeders"
    load = np.array([p.get(key, {}).get(feeder_id, np.nan) for p in monitor.history], float)
    if key == "feeders":
        load = -load  # fleet net injection → load seen upstream
    forecast = np.full(len(load), np.nan)
    if len(load) > 1:
        forecast[1:] = persistence(load, np.arange(len(load) - 1), 1)
    limit = monitor.grid.feeder_limit_w(feeder_id) if monitor.grid is not None else None
    return plots.line_plot(
        f"{feeder_id}: load vs forecast and limit",
        hours,
        {"load": load, "forecast (persistence)": forecast},
        x_label="hour of day (UTC)",
        y_label="kW",
        limits={"transformer rating": limit},
        y_scale=1e3,
        x_format="{:.1f}",
        element_id="plot-load",
    )


def voltage_plot(monitor: ConsoleMonitor, feeder_id: str) -> str:
    assert monitor.grid is not None
    profile = monitor.grid.voltage_profile(feeder_id)
    band = monitor.grid.limits.mv
    return plots.line_plot(
        f"{feeder_id}: voltage along the feeder",
        [d for d, _, _ in profile],
        {"|V| (pu)": [v for _, v, _ in profile]},
        x_label="distance from the substation (km)",
        y_label="pu",
        limits={"ANSI A max": band.upper_pu, "ANSI A min": band.lower_pu},
        x_format="{:.1f}",
        element_id="plot-voltage",
    )


@router.get("/plots", response_class=HTMLResponse)
async def plots_page(request: Request) -> Response:
    principal = _page_principal(request)
    if principal is None:
        return _login_redirect()
    monitor = await monitor_of(request)
    hours = _hours(monitor)
    flex = plots.line_plot(
        "Fleet flexibility over the day",
        hours,
        {
            "up (kW)": [p["flex_up_w"] for p in monitor.history],
            "down (kW)": [p["flex_down_w"] for p in monitor.history],
            "net P (kW)": [p["p_w"] for p in monitor.history],
        },
        x_label="hour of day (UTC)",
        y_label="kW",
        y_scale=1e3,
        x_format="{:.1f}",
        element_id="plot-flex",
    )
    feeders = [f for f in monitor.rt.fleet.feeder_ids]
    return _render(
        request,
        "plots.html",
        principal,
        page="plots",
        flex_plot=flex,
        load_plots=[feeder_load_plot(monitor, f) for f in feeders] if principal.is_utility else [],
    )


@router.get("/drill", response_class=HTMLResponse)
async def drill_page(request: Request) -> Response:
    principal = _page_principal(request)
    if principal is None:
        return _login_redirect()
    monitor = await monitor_of(request)
    view = drill_view(monitor) if principal.is_utility else {"incident": None, "feeders": [], "actions": []}
    return _render(request, "drill.html", principal, page="drill", drill=view)


@router.get("/reports", response_class=HTMLResponse)
async def reports_page(request: Request) -> Response:
    principal = _page_principal(request)
    if principal is None:
        return _login_redirect()
    monitor = await monitor_of(request)
    trail = reports.audit_rows(monitor.rt, principal.scope.tenant_id)
    return _render(
        request,
        "reports.html",
        principal,
        page="reports",
        events=reports.event_rows(monitor),
        audit=trail[-200:][::-1],
    )


@router.get("/reports/{name}.{fmt}")
async def report_file(request: Request, name: str, fmt: str, principal: ConsoleViewer) -> Response:
    monitor = await monitor_of(request)
    if name == "audit":
        rows, columns = reports.audit_rows(monitor.rt, principal.scope.tenant_id), reports.AUDIT_COLUMNS
        title = "Command audit trail"
    elif name == "events":
        rows, columns = reports.event_rows(monitor), reports.EVENT_COLUMNS
        title = "Event history and delivery against target"
    else:
        raise NotFound("report", name)
    stamp = monitor.rt.clock.now().strftime("%Y%m%dT%H%M%SZ")
    subtitle = (
        f"derms — generated {monitor.rt.clock.now().isoformat()} for {principal.username} ({len(rows)} rows)"
    )
    if fmt == "csv":
        body, media = reports.to_csv(rows, columns).encode(), "text/csv"
    elif fmt == "pdf":
        body, media = reports.to_pdf(title, subtitle, rows, columns), "application/pdf"
    else:
        raise NotFound("report format", fmt)
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt}"'},
    )
