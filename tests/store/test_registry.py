from datetime import timedelta

import pytest
from sqlalchemy import Engine

from derms.core import Capabilities, ControlKind, Customer, Der, DerKind, NotFound, Site, ValidationFailed
from derms.store import registry
from derms.store.scope import TenantScope
from tests.conftest import T0

UTILITY = TenantScope.utility()


def seed(engine: Engine) -> None:
    with engine.begin() as conn:
        registry.create_tenant(
            conn, tenant_id="utility", name="Utility", kind="utility", at=T0, actor="admin"
        )
        registry.create_tenant(
            conn, tenant_id="agg-a", name="Aggregator A", kind="aggregator", at=T0, actor="admin"
        )
        registry.create_tenant(
            conn, tenant_id="agg-b", name="Aggregator B", kind="aggregator", at=T0, actor="admin"
        )
        for tenant in ("agg-a", "agg-b"):
            registry.create_customer(
                conn, Customer(f"c-{tenant}", tenant, "Customer"), scope=UTILITY, at=T0, actor="admin"
            )
            registry.create_site(
                conn,
                Site(f"s-{tenant}", f"c-{tenant}", tenant, 48.0, 7.8, "f1", "12"),
                scope=UTILITY,
                at=T0,
                actor="admin",
            )
            caps = Capabilities(
                w_max=5000,
                w_max_consume=5000,
                wh_max=13500,
                controls=frozenset({ControlKind.CHARGE_DISCHARGE}),
            )
            registry.create_ders(
                conn,
                [
                    Der(
                        f"d-{tenant}-{i}",
                        f"s-{tenant}",
                        DerKind.HOME_BATTERY,
                        caps,
                        "sim",
                        f"{tenant}/{i}",
                        tenant,
                    )
                    for i in range(3)
                ],
                scope=UTILITY,
                at=T0,
                actor="admin",
            )


def test_registry_roundtrip_and_dense_index(db_engine: Engine) -> None:
    seed(db_engine)
    with db_engine.connect() as conn:
        ders = registry.list_ders(conn, scope=UTILITY)
        assert [d.id for d in ders][:3] == ["d-agg-a-0", "d-agg-a-1", "d-agg-a-2"]
        assert sorted(registry.der_index(conn).values()) == list(range(6))
        der = registry.get_der(conn, "d-agg-b-1", scope=UTILITY)
        assert der.capabilities.wh_max == 13500
        assert der.capabilities.controls == frozenset({ControlKind.CHARGE_DISCHARGE})
        assert len(registry.list_ders(conn, scope=UTILITY, feeder_id="f1")) == 6


def test_tenant_isolation(db_engine: Engine) -> None:
    seed(db_engine)
    a = TenantScope("agg-a")
    with db_engine.connect() as conn:
        assert {d.tenant_id for d in registry.list_ders(conn, scope=a)} == {"agg-a"}
        with pytest.raises(NotFound):
            registry.get_der(conn, "d-agg-b-0", scope=a)
        with pytest.raises(NotFound):
            registry.get_site(conn, "s-agg-b", scope=a)
    with db_engine.begin() as conn, pytest.raises(ValidationFailed) as err:
        caps = Capabilities(w_max=1000)
        registry.create_ders(
            conn,
            [Der("x", "s-agg-b", DerKind.PV_INVERTER, caps, "sim", "x", "agg-b")],
            scope=a,
            at=T0,
            actor="a",
        )
    assert "outside your scope" in str(err.value)


def test_bulk_create_reports_every_problem_and_writes_nothing(db_engine: Engine) -> None:
    seed(db_engine)
    caps = Capabilities(w_max=1000)
    bad = [
        Der("d-agg-a-0", "s-agg-a", DerKind.PV_INVERTER, caps, "sim", "n1", "agg-a"),  # exists
        Der("new-1", "nowhere", DerKind.PV_INVERTER, caps, "sim", "n2", "agg-a"),  # no site
        Der("new-2", "s-agg-b", DerKind.PV_INVERTER, caps, "sim", "n3", "agg-a"),  # other tenant's site
    ]
    with pytest.raises(ValidationFailed) as err, db_engine.begin() as conn:
        registry.create_ders(conn, bad, scope=UTILITY, at=T0, actor="admin")
    assert len(err.value.errors) == 3
    with db_engine.connect() as conn:
        assert len(registry.list_ders(conn, scope=UTILITY)) == 6


def test_changes_keep_history(db_engine: Engine) -> None:
    seed(db_engine)
    later = T0 + timedelta(hours=1)
    with db_engine.begin() as conn:
        der = registry.get_der(conn, "d-agg-a-0", scope=UTILITY)
        registry.update_der(conn, _renamed(der), scope=UTILITY, at=later, actor="op1")
        registry.delete_der(conn, "d-agg-a-0", scope=UTILITY, at=later, actor="op2")
    with db_engine.connect() as conn:
        rows = registry.history(conn, "der", "d-agg-a-0", scope=UTILITY)
        assert [r["action"] for r in rows] == ["create", "update", "delete"]
        assert (
            rows[1]["actor"] == "op1"
            and rows[1]["before"]["name"] == ""
            and rows[1]["after"]["name"] == "garage battery"
        )
        assert rows[2]["after"] is None and rows[2]["at"] == later
        assert not registry.get_der(conn, "d-agg-a-0", scope=UTILITY).enabled
        assert registry.history(conn, "der", "d-agg-a-0", scope=TenantScope("agg-b")) == []


def _renamed(der: Der) -> Der:
    from dataclasses import replace

    return replace(der, name="garage battery")


def test_feeder_reassignment_is_recorded(db_engine: Engine) -> None:
    seed(db_engine)
    with db_engine.begin() as conn:
        changed = registry.set_site_feeders(
            conn, {"s-agg-a": ("f2", "40"), "s-agg-b": ("f1", "12")}, at=T0, actor="topology"
        )
    assert changed == 1
    with db_engine.connect() as conn:
        assert registry.get_site(conn, "s-agg-a", scope=UTILITY).feeder_id == "f2"
        assert [r["action"] for r in registry.history(conn, "site", "s-agg-a", scope=UTILITY)] == [
            "create",
            "update",
        ]
