"""Customers, sites and DERs (registry), with their change history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from derms.api.audit import audit
from derms.api.auth import Forbidden, Operator, Principal, Viewer
from derms.api.schemas import CustomerIn, CustomerOut, DerIn, DerOut, SiteIn, SiteOut
from derms.core.der import Capabilities, Der
from derms.core.errors import ValidationFailed
from derms.core.site import Customer, Site
from derms.runtime import Runtime
from derms.store import registry as reg
from derms.store.mappers import capabilities_to_json

router = APIRouter(prefix="/api/v1", tags=["registry"])
Limit = Annotated[int, Query(ge=1, le=10_000)]
Offset = Annotated[int, Query(ge=0)]


def _runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def _tenant_for_create(principal: Principal, requested: str | None) -> str:
    if principal.is_utility:
        return requested or principal.tenant_id
    if requested not in (None, principal.tenant_id):
        raise Forbidden("aggregator users can only create resources in their own tenant")
    return principal.tenant_id


def _der_out(der: Der) -> DerOut:
    return DerOut(
        id=der.id,
        site_id=der.site_id,
        tenant_id=der.tenant_id,
        kind=der.kind,
        protocol=der.protocol,
        address=der.address,
        name=der.name,
        enabled=der.enabled,
        capabilities=capabilities_to_json(der.capabilities),
    )


def _der_in(body: DerIn, tenant_id: str) -> Der:
    caps = body.capabilities.model_dump()
    caps["controls"] = frozenset(caps["controls"])
    return Der(
        id=body.id,
        site_id=body.site_id,
        kind=body.kind,
        capabilities=Capabilities(**caps),
        protocol=body.protocol,
        address=body.address,
        tenant_id=tenant_id,
        name=body.name,
        enabled=body.enabled,
    )


@router.get("/customers", response_model=list[CustomerOut])
def list_customers(
    request: Request, principal: Viewer, limit: Limit = 1000, offset: Offset = 0
) -> list[Customer]:
    with _runtime(request).engine.connect() as conn:
        return reg.list_customers(conn, scope=principal.scope, limit=limit, offset=offset)


@router.post("/customers", response_model=CustomerOut, status_code=status.HTTP_201_CREATED)
def create_customer(request: Request, body: CustomerIn, principal: Operator) -> Customer:
    rt = _runtime(request)
    customer = Customer(body.id, _tenant_for_create(principal, body.tenant_id), body.name, body.email)
    with rt.engine.begin() as conn:
        reg.create_customer(
            conn, customer, scope=principal.scope, at=rt.clock.now(), actor=principal.username
        )
        audit(conn, rt.clock, principal, "customer.create", f"customer/{customer.id}", body.model_dump())
    return customer


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(request: Request, customer_id: str, principal: Viewer) -> Customer:
    with _runtime(request).engine.connect() as conn:
        return reg.get_customer(conn, customer_id, scope=principal.scope)


@router.get("/sites", response_model=list[SiteOut])
def list_sites(
    request: Request, principal: Viewer, feeder_id: str | None = None, limit: Limit = 1000, offset: Offset = 0
) -> list[Site]:
    with _runtime(request).engine.connect() as conn:
        return reg.list_sites(conn, scope=principal.scope, feeder_id=feeder_id, limit=limit, offset=offset)


def _site(body: SiteIn, tenant_id: str) -> Site:
    return Site(tenant_id=tenant_id, **body.model_dump())


@router.post("/sites", response_model=SiteOut, status_code=status.HTTP_201_CREATED)
def create_site(request: Request, body: SiteIn, principal: Operator) -> Site:
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        owner = reg.get_customer(conn, body.customer_id, scope=principal.scope)
        site = reg.create_site(
            conn,
            _site(body, owner.tenant_id),
            scope=principal.scope,
            at=rt.clock.now(),
            actor=principal.username,
        )
        audit(conn, rt.clock, principal, "site.create", f"site/{site.id}", body.model_dump(mode="json"))
    return site


@router.get("/sites/{site_id}", response_model=SiteOut)
def get_site(request: Request, site_id: str, principal: Viewer) -> Site:
    with _runtime(request).engine.connect() as conn:
        return reg.get_site(conn, site_id, scope=principal.scope)


@router.put("/sites/{site_id}", response_model=SiteOut)
def update_site(request: Request, site_id: str, body: SiteIn, principal: Operator) -> Site:
    rt = _runtime(request)
    if body.id != site_id:
        raise ValidationFailed([f"body id {body.id!r} does not match path {site_id!r}"])
    with rt.engine.begin() as conn:
        current = reg.get_site(conn, site_id, scope=principal.scope)
        site = reg.update_site(
            conn,
            _site(body, current.tenant_id),
            scope=principal.scope,
            at=rt.clock.now(),
            actor=principal.username,
        )
        audit(conn, rt.clock, principal, "site.update", f"site/{site_id}", body.model_dump(mode="json"))
    rt.reload_fleet()
    return site


@router.get("/ders", response_model=list[DerOut])
def list_ders(
    request: Request,
    principal: Viewer,
    site_id: str | None = None,
    feeder_id: str | None = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> list[DerOut]:
    with _runtime(request).engine.connect() as conn:
        found = reg.list_ders(
            conn, scope=principal.scope, site_id=site_id, feeder_id=feeder_id, limit=limit, offset=offset
        )
    return [_der_out(d) for d in found]


@router.post("/ders", response_model=list[DerOut], status_code=status.HTTP_201_CREATED)
def create_ders(request: Request, body: list[DerIn], principal: Operator) -> list[DerOut]:
    """Register one or more DERs; every problem in the batch is reported and nothing is written."""
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        tenant_of_site = {
            s: reg.get_site(conn, s, scope=principal.scope).tenant_id for s in {b.site_id for b in body}
        }
        items = [_der_in(b, tenant_of_site[b.site_id]) for b in body]
        reg.create_ders(conn, items, scope=principal.scope, at=rt.clock.now(), actor=principal.username)
        for item in items:
            audit(
                conn,
                rt.clock,
                principal,
                "der.create",
                f"der/{item.id}",
                {"kind": str(item.kind), "protocol": item.protocol},
            )
    rt.reload_fleet()
    return [_der_out(d) for d in items]


@router.get("/ders/{der_id}", response_model=DerOut)
def get_der(request: Request, der_id: str, principal: Viewer) -> DerOut:
    with _runtime(request).engine.connect() as conn:
        return _der_out(reg.get_der(conn, der_id, scope=principal.scope))


@router.put("/ders/{der_id}", response_model=DerOut)
def update_der(request: Request, der_id: str, body: DerIn, principal: Operator) -> DerOut:
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        current = reg.get_der(conn, der_id, scope=principal.scope)
        if body.id != der_id:
            raise ValidationFailed([f"body id {body.id!r} does not match path {der_id!r}"])
        der = reg.update_der(
            conn,
            _der_in(body, current.tenant_id),
            scope=principal.scope,
            at=rt.clock.now(),
            actor=principal.username,
        )
        audit(conn, rt.clock, principal, "der.update", f"der/{der_id}", body.model_dump(mode="json"))
    rt.reload_fleet()
    return _der_out(der)


@router.delete("/ders/{der_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_der(request: Request, der_id: str, principal: Operator) -> None:
    """Decommission a DER (it stays in the registry, disabled, with its history)."""
    rt = _runtime(request)
    with rt.engine.begin() as conn:
        reg.delete_der(conn, der_id, scope=principal.scope, at=rt.clock.now(), actor=principal.username)
        audit(conn, rt.clock, principal, "der.delete", f"der/{der_id}")
    rt.reload_fleet()


@router.get("/ders/{der_id}/history")
def der_history(request: Request, der_id: str, principal: Viewer) -> list[dict]:
    with _runtime(request).engine.connect() as conn:
        reg.get_der(conn, der_id, scope=principal.scope)
        return reg.history(conn, "der", der_id, scope=principal.scope)
