"""Audit log, users and tokens, health and metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text

from derms.api.audit import audit
from derms.api.auth import Admin, Forbidden, Role, Viewer, create_user, issue_token
from derms.fleet import rollup
from derms.runtime import Runtime
from derms.store import audit as audit_store

router = APIRouter(tags=["admin"])


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role
    tenant_id: str | None = None


@router.get("/api/v1/audit")
def audit_log(
    request: Request,
    principal: Admin,
    since_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    action_prefix: str | None = None,
) -> list[dict[str, Any]]:
    """Audit entries, oldest first. Aggregator admins see their own tenant's entries only."""
    rt: Runtime = request.app.state.runtime
    with rt.engine.connect() as conn:
        found = audit_store.entries(
            conn,
            tenant_id=principal.scope.tenant_id,
            action_prefix=action_prefix,
            since_seq=since_seq,
            limit=limit,
        )
    return [
        {
            "seq": e.seq,
            "at": e.at.isoformat(),
            "actor": e.actor,
            "tenant_id": e.tenant_id,
            "action": e.action,
            "target": e.target,
            "detail": e.detail,
            "hash": e.hash,
        }
        for e in found
    ]


@router.post("/api/v1/users", status_code=status.HTTP_201_CREATED)
def add_user(request: Request, body: UserIn, principal: Admin) -> dict[str, str]:
    """Create a user and return its first API token (shown once)."""
    rt: Runtime = request.app.state.runtime
    tenant_id = body.tenant_id or principal.tenant_id
    if not principal.is_utility and tenant_id != principal.tenant_id:
        raise Forbidden("aggregator admins can only add users to their own tenant")
    with rt.engine.begin() as conn:
        user_id = create_user(
            conn, username=body.username, tenant_id=tenant_id, role=body.role, at=rt.clock.now()
        )
        token = issue_token(conn, user_id=user_id, at=rt.clock.now(), label="created by API")
        audit(
            conn,
            rt.clock,
            principal,
            "user.create",
            f"user/{body.username}",
            {"role": body.role.name.lower(), "tenant_id": tenant_id},
        )
    return {"user_id": user_id, "token": token}


@router.get("/health")
def health(request: Request) -> dict[str, str]:
    """Liveness: answers without credentials and reveals nothing about the fleet."""
    rt: Runtime = request.app.state.runtime
    with rt.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.get("/api/v1/health")
def health_detail(request: Request, principal: Viewer) -> dict[str, Any]:
    rt: Runtime = request.app.state.runtime
    tracker = rt.tracker
    return {
        "status": "ok",
        "database": rt.engine.dialect.name,
        "bus": type(rt.bus).__name__,
        "adapters": sorted(rt.adapters),
        "ders": int(rt.fleet.registered.sum()),
        "telemetry_received": tracker.received if tracker else 0,
        "telemetry_written": tracker.written if tracker else 0,
    }


@router.get("/metrics")
def metrics(request: Request, principal: Viewer) -> Response:
    """Prometheus exposition of fleet and ingest gauges."""
    rt: Runtime = request.app.state.runtime
    registry = CollectorRegistry()
    totals = rollup(rt.fleet).fleet()
    for name, value in totals.items():
        Gauge(f"derms_fleet_{name}", f"fleet total {name}", registry=registry).set(value)
    tracker = rt.tracker
    Gauge("derms_telemetry_received", "samples received", registry=registry).set(
        tracker.received if tracker else 0
    )
    Gauge("derms_telemetry_written", "samples written", registry=registry).set(
        tracker.written if tracker else 0
    )
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
