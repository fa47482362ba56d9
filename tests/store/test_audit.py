from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from derms.store import audit
from tests.conftest import T0


def test_append_and_verify_chain(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        for i in range(5):
            audit.append(
                conn,
                at=T0 + timedelta(seconds=i),
                actor="op",
                action="der.update",
                target=f"der/{i}",
                detail={"i": i},
                tenant_id="t1",
            )
        audit.append(conn, at=T0, actor="op", action="command.send", target="der/9", detail={"w": 1.5})
    with db_engine.connect() as conn:
        assert audit.count(conn) == 6
        assert audit.verify_chain(conn) is None
        assert [e.target for e in audit.entries(conn, tenant_id="t1")] == [f"der/{i}" for i in range(5)]
        assert [e.action for e in audit.entries(conn, action_prefix="command.")] == ["command.send"]


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"])
def test_audit_log_is_append_only(db_engine: Engine, statement: str) -> None:
    with db_engine.begin() as conn:
        audit.append(conn, at=T0, actor="op", action="x", target="y")
    with pytest.raises(DBAPIError, match="append-only"), db_engine.begin() as conn:
        conn.execute(text(statement))
    with db_engine.connect() as conn:
        assert audit.count(conn) == 1


def test_tampering_breaks_the_chain(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        for i in range(3):
            audit.append(conn, at=T0, actor="op", action="x", target=str(i))
    with sqlite_engine.begin() as conn:  # someone with file access drops the trigger and edits a row
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    with sqlite_engine.connect() as conn:
        assert audit.verify_chain(conn) == 2
