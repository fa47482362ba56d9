"""Durable state: a restarted server (SQLite and PostgreSQL, migrated) knows everything it published."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect

from derms.adapters.base import AdapterContext
from derms.adapters.ieee2030_5 import Ieee2030_5Adapter, Ieee2030_5Settings, create_adapter
from derms.adapters.ieee2030_5.events import EventStatusCode
from derms.adapters.ieee2030_5.schema import ActivePower, DERCapability, DERControlBase
from derms.adapters.ieee2030_5.scope import CertificateScope
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from derms.core.der import Capabilities, Der, DerKind
from tests.adapters.ieee2030_5.sep2_harness import T0

LFDI = "3E4F45AB31EDFE5B67E343E5E4562E31984E23E5"
AGG = "AA" * 20


def _adapter(engine: Engine, clock: ManualClock) -> Ieee2030_5Adapter:
    return create_adapter(
        AdapterContext(bus=MemoryBus(clock), clock=clock, protocol="ieee2030_5"),
        Ieee2030_5Settings(port=0),
        engine,
    )


async def test_state_survives_a_restart(db_engine: Engine) -> None:
    assert "ieee2030_5_record" in inspect(db_engine).get_table_names()
    clock = ManualClock(T0)
    first = _adapter(db_engine, clock)
    manager = first.manager
    manager.register_out_of_band(AGG, "default", is_aggregator=True)
    await first.register_device(
        Der("d1", "s1", DerKind.PV_INVERTER, Capabilities(w_max=5000), "ieee2030_5", LFDI, "default")
    )
    edev = first.repo.end_device_by_der("d1")
    scope = first.repo.scope_for(CertificateScope(LFDI, edev.sfdi))
    await manager.put_der_part(
        scope,
        edev.id,
        DERCapability(modesSupported="00000000", rtgMaxW=ActivePower(value=5, multiplier=3), type_=4),
    )
    program = manager.create_program("default", "doe", 1, frozenset({edev.id}))
    await manager.set_default(program.id, DERControlBase(opModExpLimW=ActivePower(value=5, multiplier=3)))
    control = await manager.create_control(
        program.id, DERControlBase(opModExpLimW=ActivePower(value=15, multiplier=2)), manager.now() + 60, 600
    )
    await manager.cancel_control(control.id)
    curve = await manager.create_curve(program.id, 11, [(92, 30), (108, -30)], y_ref_type=2)

    second = _adapter(db_engine, clock)
    repo = second.repo
    restored = repo.end_device_by_der("d1")
    assert (
        restored.lfdi == LFDI and restored.capability is not None and restored.capability.rtgMaxW.value == 5
    )
    assert repo.end_device_by_lfdi(AGG).is_aggregator  # type: ignore[union-attr]
    assert repo.program(program.id).default is not None
    states = second.manager.control_states(restored, repo.program(program.id))
    assert [(c.id, s.status) for c, s in states] == [(control.id, EventStatusCode.CANCELLED)]
    assert repo.curves[curve.id].points == curve.points
    assert second._dispatch_programs == first._dispatch_programs
    assert repo.next_id() > curve.id


@pytest.mark.parametrize("kind", ["end_device", "program"])
def test_unknown_kind_is_refused(kind: str) -> None:
    from derms.adapters.ieee2030_5.codec import decode

    with pytest.raises(ValueError, match="unknown"):
        decode(kind + "_x", {})
