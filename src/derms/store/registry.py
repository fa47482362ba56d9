"""The DER registry: tenants, customers, sites and DERs, with history of every change.

Each write runs in the caller's transaction and records who, when, before and after in
``registry_history``. Every read takes a :class:`TenantScope`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select

from derms.core.der import Der
from derms.core.errors import NotFound, ValidationFailed
from derms.core.site import Customer, Site
from derms.store import mappers
from derms.store.schema import customers, ders, registry_history, sites, tenants
from derms.store.scope import TenantScope

TENANT_KINDS = ("utility", "aggregator")


def create_tenant(
    conn: Connection, *, tenant_id: str, name: str, kind: str, at: datetime, actor: str
) -> None:
    if kind not in TENANT_KINDS:
        raise ValidationFailed([f"tenant kind must be one of {TENANT_KINDS}"])
    row = {"id": tenant_id, "name": name, "kind": kind, "created_at": at}
    conn.execute(tenants.insert().values(**row))
    _history(conn, "tenant", tenant_id, "create", actor, tenant_id, at, None, row)


def tenant_kind(conn: Connection, tenant_id: str) -> str:
    kind = conn.execute(select(tenants.c.kind).where(tenants.c.id == tenant_id)).scalar()
    if kind is None:
        raise NotFound("tenant", tenant_id)
    return str(kind)


def _history(
    conn: Connection,
    entity: str,
    entity_id: str,
    action: str,
    actor: str,
    tenant_id: str | None,
    at: datetime,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    conn.execute(
        registry_history.insert().values(
            entity=entity,
            entity_id=entity_id,
            action=action,
            actor=actor,
            tenant_id=tenant_id,
            at=at,
            before=_jsonable(before),
            after=_jsonable(after),
        )
    )


def _history_many(
    conn: Connection, entity: str, rows: list[dict[str, Any]], actor: str, at: datetime
) -> None:
    conn.execute(
        registry_history.insert(),
        [
            {
                "entity": entity,
                "entity_id": r["id"],
                "action": "create",
                "actor": actor,
                "tenant_id": r["tenant_id"],
                "at": at,
                "before": None,
                "after": _jsonable(r),
            }
            for r in rows
        ],
    )


def _jsonable(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def _get_row(conn: Connection, table: Table, entity: str, ident: str, scope: TenantScope) -> Any:
    row = conn.execute(select(table).where(table.c.id == ident, scope.where(table))).first()
    if row is None:
        raise NotFound(entity, ident)
    return row


def _check_tenant(scope: TenantScope, tenant_id: str) -> None:
    if not scope.allows(tenant_id):
        raise NotFound("tenant", tenant_id)


# -- customers -------------------------------------------------------------------------


def create_customer(
    conn: Connection, customer: Customer, *, scope: TenantScope, at: datetime, actor: str
) -> Customer:
    create_customers(conn, [customer], scope=scope, at=at, actor=actor)
    return customer


def create_customers(
    conn: Connection, items: Sequence[Customer], *, scope: TenantScope, at: datetime, actor: str
) -> None:
    """Create customers in bulk, with their history rows."""
    for customer in items:
        _check_tenant(scope, customer.tenant_id)
    rows = [mappers.customer_to_row(c) for c in items]
    if rows:
        conn.execute(customers.insert(), rows)
        _history_many(conn, "customer", rows, actor, at)


def get_customer(conn: Connection, customer_id: str, *, scope: TenantScope) -> Customer:
    return mappers.customer_from_row(_get_row(conn, customers, "customer", customer_id, scope))


def list_customers(
    conn: Connection, *, scope: TenantScope, limit: int = 1000, offset: int = 0
) -> list[Customer]:
    query = (
        select(customers).where(scope.where(customers)).order_by(customers.c.id).limit(limit).offset(offset)
    )
    return [mappers.customer_from_row(r) for r in conn.execute(query)]


# -- sites -------------------------------------------------------------------------------


def create_site(conn: Connection, site: Site, *, scope: TenantScope, at: datetime, actor: str) -> Site:
    create_sites(conn, [site], scope=scope, at=at, actor=actor)
    return site


def create_sites(
    conn: Connection, items: Sequence[Site], *, scope: TenantScope, at: datetime, actor: str
) -> None:
    """Create sites in bulk; each must belong to a visible customer of the same tenant."""
    owners = {
        r.id: r.tenant_id
        for r in conn.execute(
            select(customers.c.id, customers.c.tenant_id).where(
                customers.c.id.in_({s.customer_id for s in items}), scope.where(customers)
            )
        )
    }
    problems = []
    for site in items:
        _check_tenant(scope, site.tenant_id)
        if site.customer_id not in owners:
            raise NotFound("customer", site.customer_id)
        if owners[site.customer_id] != site.tenant_id:
            problems.append(f"site {site.id}: customer {site.customer_id} belongs to another tenant")
    if problems:
        raise ValidationFailed(problems)
    rows = [mappers.site_to_row(s) for s in items]
    if rows:
        conn.execute(sites.insert(), rows)
        _history_many(conn, "site", rows, actor, at)


def get_site(conn: Connection, site_id: str, *, scope: TenantScope) -> Site:
    return mappers.site_from_row(_get_row(conn, sites, "site", site_id, scope))


def list_sites(
    conn: Connection, *, scope: TenantScope, feeder_id: str | None = None, limit: int = 1000, offset: int = 0
) -> list[Site]:
    query = select(sites).where(scope.where(sites)).order_by(sites.c.id).limit(limit).offset(offset)
    if feeder_id is not None:
        query = query.where(sites.c.feeder_id == feeder_id)
    return [mappers.site_from_row(r) for r in conn.execute(query)]


def update_site(conn: Connection, site: Site, *, scope: TenantScope, at: datetime, actor: str) -> Site:
    before = _get_row(conn, sites, "site", site.id, scope)
    if before.tenant_id != site.tenant_id or before.customer_id != site.customer_id:
        raise ValidationFailed(["a site's tenant and customer cannot change"])
    row = mappers.site_to_row(site)
    conn.execute(sites.update().where(sites.c.id == site.id).values(**row))
    _history(conn, "site", site.id, "update", actor, site.tenant_id, at, dict(before._mapping), row)
    return site


def set_site_feeders(
    conn: Connection, assignments: dict[str, tuple[str | None, str | None]], *, at: datetime, actor: str
) -> int:
    """Re-map sites to ``(feeder_id, bus)`` after a topology change; returns how many changed."""
    changed = 0
    if not assignments:
        return 0
    rows = conn.execute(select(sites).where(sites.c.id.in_(list(assignments)))).all()
    for row in rows:
        feeder_id, bus = assignments[row.id]
        if (row.feeder_id, row.bus) == (feeder_id, bus):
            continue
        conn.execute(sites.update().where(sites.c.id == row.id).values(feeder_id=feeder_id, bus=bus))
        after = {**row._mapping, "feeder_id": feeder_id, "bus": bus}
        _history(conn, "site", row.id, "update", actor, row.tenant_id, at, dict(row._mapping), after)
        changed += 1
    return changed


# -- DERs ----------------------------------------------------------------------------------


def _next_idx(conn: Connection) -> int:
    current = conn.execute(select(func.max(ders.c.idx))).scalar()
    return 0 if current is None else int(current) + 1


def create_ders(
    conn: Connection, items: Sequence[Der], *, scope: TenantScope, at: datetime, actor: str
) -> list[int]:
    """Register DERs in bulk; returns their dense row indices. Every problem is reported at once."""
    problems: list[str] = []
    site_rows = {
        r.id: r
        for r in conn.execute(
            select(sites.c.id, sites.c.tenant_id).where(sites.c.id.in_({d.site_id for d in items}))
        )
    }
    seen: set[str] = set()
    for der in items:
        if not scope.allows(der.tenant_id):
            problems.append(f"{der.id}: tenant {der.tenant_id} is outside your scope")
        site = site_rows.get(der.site_id)
        if site is None or not scope.allows(site.tenant_id):
            problems.append(f"{der.id}: site {der.site_id} not found")
        elif site.tenant_id != der.tenant_id:
            problems.append(f"{der.id}: site {der.site_id} belongs to another tenant")
        if der.id in seen:
            problems.append(f"{der.id}: duplicate id in request")
        seen.add(der.id)
    existing = conn.execute(select(ders.c.id).where(ders.c.id.in_(seen))).scalars().all()
    problems.extend(f"{i}: already registered" for i in existing)
    if problems:
        raise ValidationFailed(problems)
    start = _next_idx(conn)
    rows = [{**mappers.der_to_row(d), "idx": start + i} for i, d in enumerate(items)]
    if rows:
        conn.execute(ders.insert(), rows)
        _history_many(conn, "der", rows, actor, at)
    return [r["idx"] for r in rows]


def get_der(conn: Connection, der_id: str, *, scope: TenantScope) -> Der:
    return mappers.der_from_row(_get_row(conn, ders, "DER", der_id, scope))


def list_ders(
    conn: Connection,
    *,
    scope: TenantScope,
    site_id: str | None = None,
    feeder_id: str | None = None,
    limit: int | None = 1000,
    offset: int = 0,
) -> list[Der]:
    query = select(ders).where(scope.where(ders)).order_by(ders.c.idx).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    if site_id is not None:
        query = query.where(ders.c.site_id == site_id)
    if feeder_id is not None:
        query = query.join(sites, sites.c.id == ders.c.site_id).where(sites.c.feeder_id == feeder_id)
    return [mappers.der_from_row(r) for r in conn.execute(query)]


def der_index(conn: Connection) -> dict[str, int]:
    """Map every DER id to its dense row index (platform-internal, unscoped)."""
    return {r.id: r.idx for r in conn.execute(select(ders.c.id, ders.c.idx))}


def update_der(conn: Connection, der: Der, *, scope: TenantScope, at: datetime, actor: str) -> Der:
    before = _get_row(conn, ders, "DER", der.id, scope)
    if before.tenant_id != der.tenant_id:
        raise ValidationFailed(["a DER's tenant cannot change"])
    if der.site_id != before.site_id:
        get_site(conn, der.site_id, scope=scope)
    row = mappers.der_to_row(der)
    conn.execute(ders.update().where(ders.c.id == der.id).values(**row))
    _history(
        conn,
        "der",
        der.id,
        "update",
        actor,
        der.tenant_id,
        at,
        dict(before._mapping),
        {**row, "idx": before.idx},
    )
    return der


def delete_der(conn: Connection, der_id: str, *, scope: TenantScope, at: datetime, actor: str) -> None:
    """Decommission: the DER is disabled, never removed, so its telemetry index stays valid."""
    der = get_der(conn, der_id, scope=scope)
    before = _get_row(conn, ders, "DER", der_id, scope)
    conn.execute(ders.update().where(ders.c.id == der_id).values(enabled=False))
    _history(conn, "der", der_id, "delete", actor, der.tenant_id, at, dict(before._mapping), None)


def history(conn: Connection, entity: str, entity_id: str, *, scope: TenantScope) -> list[dict[str, Any]]:
    query = (
        select(registry_history)
        .where(registry_history.c.entity == entity, registry_history.c.entity_id == entity_id)
        .where(scope.where(registry_history))
        .order_by(registry_history.c.id)
    )
    return [dict(r._mapping) for r in conn.execute(query)]
