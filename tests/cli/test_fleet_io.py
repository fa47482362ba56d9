import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from derms.cli.fleet_io import export_fleet, import_fleet
from derms.cli.main import app
from derms.core.clock import ManualClock
from derms.core.errors import ValidationFailed
from derms.store import audit
from derms.store import registry as reg
from derms.store.scope import TenantScope
from tests.conftest import T0

ROWS = [
    {
        "tenant_id": "agg-a",
        "customer_id": "c1",
        "customer_name": "Jo",
        "site_id": "s1",
        "latitude": "48.0",
        "longitude": "7.8",
        "feeder_id": "f1",
        "bus": "12",
        "phase": "A",
        "der_id": "d1",
        "kind": "home_battery",
        "protocol": "sim",
        "address": "d1",
        "w_max": "5000",
        "w_max_consume": "5000",
        "wh_max": "13500",
        "controls": "charge_discharge|active_power_target",
    },
    {
        "tenant_id": "agg-a",
        "customer_id": "c1",
        "site_id": "s1",
        "der_id": "d2",
        "kind": "pv_inverter",
        "protocol": "sim",
        "address": "d2",
        "w_max": "7000",
    },
]


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    fields = sorted({k for r in rows for k in r})
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def seed_tenant(engine: Engine) -> None:
    with engine.begin() as conn:
        reg.create_tenant(conn, tenant_id="agg-a", name="A", kind="aggregator", at=T0, actor="t")


def test_csv_import_export_roundtrip(db_engine: Engine, tmp_path: Path) -> None:
    seed_tenant(db_engine)
    src = tmp_path / "fleet.csv"
    write_csv(src, ROWS)
    counts = import_fleet(db_engine, src, clock=ManualClock(T0), actor="tester")
    assert counts == {"customers": 1, "sites": 1, "ders": 2}
    with db_engine.connect() as conn:
        d1 = reg.get_der(conn, "d1", scope=TenantScope.utility())
        assert d1.capabilities.wh_max == 13500 and len(d1.capabilities.controls) == 2
        assert reg.get_site(conn, "s1", scope=TenantScope.utility()).phase == "A"
        assert [e.action for e in audit.entries(conn)] == ["fleet.import"]
    for suffix in (".json", ".csv"):
        out = tmp_path / f"export{suffix}"
        assert export_fleet(db_engine, out) == 2
    exported = json.loads((tmp_path / "export.json").read_text())
    assert exported[0]["der"]["capabilities"]["controls"] == ["active_power_target", "charge_discharge"]
    with (tmp_path / "export.csv").open() as handle:
        assert [r["der_id"] for r in csv.DictReader(handle)] == ["d1", "d2"]


def test_invalid_rows_are_all_reported_and_nothing_written(sqlite_engine: Engine, tmp_path: Path) -> None:
    seed_tenant(sqlite_engine)
    bad = [dict(ROWS[0]), {**ROWS[1], "kind": "toaster"}, {**ROWS[1], "der_id": "d3", "latitude": "300"}]
    src = tmp_path / "bad.csv"
    write_csv(src, bad)
    with pytest.raises(ValidationFailed) as err:
        import_fleet(sqlite_engine, src, clock=ManualClock(T0), actor="tester")
    assert [e.split(":")[0] for e in err.value.errors] == ["row 3", "row 4"]
    with sqlite_engine.connect() as conn:
        assert reg.list_ders(conn, scope=TenantScope.utility()) == []


def test_cli_import_users_and_help(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DERMS_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    runner = CliRunner()
    assert "derms" in runner.invoke(app, ["--help"]).output
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["users", "add-tenant", "agg-a", "Aggregator A"]).exit_code == 0
    token = runner.invoke(
        app, ["users", "add", "ops", "--tenant", "agg-a", "--role", "operator"]
    ).output.strip()
    assert token.startswith("derms_")
    src = tmp_path / "fleet.csv"
    write_csv(src, ROWS)
    result = runner.invoke(app, ["fleet", "import", str(src)])
    assert result.exit_code == 0, result.output
    write_csv(src, [{**ROWS[0], "der_id": "d9", "kind": "toaster"}])
    result = runner.invoke(app, ["fleet", "import", str(src)])
    assert result.exit_code == 1 and "nothing was written" in result.output
    out = tmp_path / "out.json"
    assert runner.invoke(app, ["fleet", "export", str(out)]).exit_code == 0
    assert len(json.loads(out.read_text())) == 2


@pytest.mark.slow
def test_cli_backtest_quick_prints_the_accuracy_table() -> None:
    pytest.importorskip("pmdarima", reason="the load backtest data ships in the optional 'backtest' extra")
    result = CliRunner().invoke(app, ["backtest", "--quick", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("[") :])
    ours = [r for r in rows if r["beats_persistence"] is not None]
    assert rows and ours, rows
    assert all(r["mae_w"] >= 0 and r["n"] > 0 for r in rows)


def test_protocol_command_groups_are_mounted(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["certs", "create", str(tmp_path / "pki")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pki" / "serca.pem").exists()
