"""Our SunSpec master against pysunspec2's 1547 test device image served by pyModbusTCP.

Neither the register image (encoded by pysunspec2's own model code) nor the Modbus server
(pyModbusTCP) is ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sunspec2
from pyModbusTCP.server import DataBank, ModbusServer
from sunspec2.file.client import FileClientDevice

from derms.adapters.sunspec.client import DeviceError, SunSpecClient
from derms.adapters.sunspec.models import SUNS_MARKER

pytestmark = pytest.mark.interop

IMAGE = Path(sunspec2.__file__).parent / "tests" / "test_data" / "device_1547.json"


def pysunspec2_image() -> tuple[list[int], FileClientDevice]:
    """Registers from 40000: 'SunS', each model as pysunspec2 encodes it, then the end model."""
    device = FileClientDevice(str(IMAGE))
    device.scan()
    registers = list(SUNS_MARKER)
    for model_id in sorted(k for k in device.models if isinstance(k, int)):
        for model in device.models[model_id]:
            data = model.get_mb()
            registers += [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    return [*registers, 0xFFFF, 0], device


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[int, FileClientDevice]]:
    registers, reference = pysunspec2_image()
    bank = DataBank()
    bank.set_holding_registers(40000, registers)
    server = ModbusServer("127.0.0.1", 0, no_block=True, data_bank=bank)
    server.start()
    try:
        yield server._service.server_address[1], reference  # type: ignore[union-attr]
    finally:
        server.stop()


async def test_master_reads_every_model_with_scale_factors(served: tuple[int, FileClientDevice]) -> None:
    port, reference = served
    async with SunSpecClient("127.0.0.1", port, timeout_s=2) as client:
        headers = await client.discover()
        assert client.base == 40000
        assert [h.model_id for h in headers] == [1, *range(701, 714)]
        models = await client.read_models()
    common = models[1][0]
    assert common.value("Mn") == "SunSpecTest" and common.value("SN") == "sn-123456789"
    for model_id, blocks in models.items():
        ref = reference.models[model_id][0]
        for path, point in blocks[0].points.items():
            ref_point = _ref_point(ref, path)
            expected = ref_point.cvalue
            if isinstance(expected, float) or isinstance(point.value, float):
                assert point.value == pytest.approx(expected), (model_id, path)
            elif point.defn.type != "pad":
                assert point.value == expected, (model_id, path)
    nameplate = models[702][0]
    assert nameplate.value("WMaxRtg") == pytest.approx(reference.models[702][0].WMaxRtg.cvalue)
    measured = models[701][0]
    assert measured.value("W") == 9800 and measured.value("Hz") == pytest.approx(60.01)


async def test_master_writes_controls_and_verifies_them(served: tuple[int, FileClientDevice]) -> None:
    port, _ = served
    async with SunSpecClient("127.0.0.1", port) as client:
        await client.discover()
        await client.read_models({704, 705})
        assert await client.write_point(704, "WMaxLimPct", 55.0) == pytest.approx(55.0)
        assert await client.write_point(704, "WMaxLimPctEna", 1) == 1
        assert await client.write_point(704, "PFWInj.PF", 0.95) == pytest.approx(0.95)
        assert await client.write_point(705, "Crv[1].Pt[0].V", 91.5) == pytest.approx(91.5)
        # a second, independent connection sees the same values
    async with SunSpecClient("127.0.0.1", port) as other:
        await other.read_models({704, 705})
        assert other.model(704).value("WMaxLimPct") == pytest.approx(55.0)
        assert other.model(705).value("Crv[1].Pt[0].V") == pytest.approx(91.5)


async def test_unreachable_device_is_a_clear_error() -> None:
    client = SunSpecClient("127.0.0.1", 1, timeout_s=0.5)
    with pytest.raises(DeviceError, match="cannot connect"):
        await client.connect()


def _ref_point(model: object, path: str) -> object:
    node: object = model
    for part in path.split("."):
        name, _, index = part.partition("[")
        node = getattr(node, "groups", {}).get(name) or getattr(node, "points", {})[name]  # type: ignore[attr-defined]
        if index:
            node = node[int(index.rstrip("]"))]  # type: ignore[index]
    return node
