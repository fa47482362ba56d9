import pytest

from derms.adapters import registry
from derms.adapters.base import Adapter, AdapterContext
from derms.bus import MemoryBus
from derms.core.clock import ManualClock
from tests.conftest import T0


@pytest.mark.parametrize("name", sorted(registry.ADAPTER_MODULES))
async def test_every_protocol_builds_with_its_translator(name: str) -> None:
    context = AdapterContext(MemoryBus(), ManualClock(T0), name)
    adapter, translator = registry.build(name, context)
    assert isinstance(adapter, Adapter)
    assert adapter.protocol == translator.protocol == name


def test_bad_settings_and_unknown_protocols_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    context = AdapterContext(MemoryBus(), ManualClock(T0), "sim")
    with pytest.raises(KeyError, match="unknown protocol"):
        registry.build("modbus-rtu-9000", context)
    monkeypatch.setenv("DERMS_ADAPTER_SIM", '{"period_s": -1}')
    with pytest.raises(ValueError, match="period_s"):
        registry.build("sim", context)


async def test_adapters_with_durable_state_get_the_database(sqlite_engine) -> None:
    context = AdapterContext(MemoryBus(), ManualClock(T0), "ieee2030_5")
    adapter, _ = registry.build("ieee2030_5", context, engine=sqlite_engine)
    assert adapter.repo._persistence is not None  # 2030.5 state is written through to the database
    bare, _ = registry.build("ieee2030_5", context)
    assert getattr(bare.repo, "_persistence", None) is None
