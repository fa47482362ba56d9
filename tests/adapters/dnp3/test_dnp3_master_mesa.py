"""Our DNP3 master against dnp3py's MESA-DER outstation (wrapped as a simulated plant)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dnp3.core.enums import CommandStatus, ControlCode

from derms.adapters.dnp3.codec import AnalogOutput, AnalogVariation, Crob
from derms.adapters.dnp3.master import CommandRejected, Dnp3Master, OperateMode, ValueKind
from derms.adapters.dnp3.points import AI_ACTIVE_POWER, AI_SOC, AO_WLIM_PCT, BO_WLIM_ENABLE, PointKind
from derms.sim.protocols.dnp3 import SimulatedPlant

pytestmark = pytest.mark.timeout(30)


async def test_integrity_poll_reads_the_whole_mesa_database(plant: SimulatedPlant) -> None:
    async with Dnp3Master("127.0.0.1", plant.port, outstation_address=10) as master:
        infos = await master.integrity_poll()
    assert all(info.truncation is None for info in infos)
    db = plant.outstation.database
    analogs = [k for k in master.values if k[0] is ValueKind.ANALOG_INPUT]
    binaries = [k for k in master.values if k[0] is ValueKind.BINARY_INPUT]
    assert len(analogs) == db.analog_input_count
    assert len(binaries) == db.binary_input_count
    p = plant.points.get(PointKind.ANALOG_INPUT, AI_ACTIVE_POWER)
    assert p.to_engineering(master.values[(ValueKind.ANALOG_INPUT, p.index)].value) == pytest.approx(
        plant.model.p_w
    )
    soc = plant.points.get(PointKind.ANALOG_INPUT, AI_SOC)
    assert master.values[(ValueKind.ANALOG_INPUT, soc.index)].value == 500  # 50.0 % at 0.1 %/count


async def test_select_before_operate_sets_limit_and_plant_curtails(plant: SimulatedPlant) -> None:
    ao = plant.points.get(PointKind.ANALOG_OUTPUT, AO_WLIM_PCT)
    bo = plant.points.get(PointKind.BINARY_OUTPUT, BO_WLIM_ENABLE)
    async with Dnp3Master("127.0.0.1", plant.port, outstation_address=10) as master:
        await master.integrity_poll()
        echoes = await master.operate(
            analogs=[AnalogOutput(ao.index, ao.to_transmission(40.0), AnalogVariation.INT32)],
            crobs=[Crob(bo.index, int(ControlCode.LATCH_ON))],
        )
        assert [(e.group, e.index, e.status) for e in echoes] == [
            (41, ao.index, CommandStatus.SUCCESS),
            (12, bo.index, CommandStatus.SUCCESS),
        ]
        assert plant.outstation.ao_store.get(ao.index).value == 400
        plant.sync(1.0)
        assert plant.model.p_w == pytest.approx(0.4 * plant.model.w_max)
        await master.class_poll()  # the change arrives as a class 3 event
        p = plant.points.get(PointKind.ANALOG_INPUT, AI_ACTIVE_POWER)
        assert master.values[(ValueKind.ANALOG_INPUT, p.index)].value == pytest.approx(
            0.4 * plant.model.w_max
        )


async def test_direct_operate_and_out_of_range_rejection(plant: SimulatedPlant) -> None:
    ao = plant.points.get(PointKind.ANALOG_OUTPUT, AO_WLIM_PCT)
    async with Dnp3Master("127.0.0.1", plant.port, outstation_address=10) as master:
        echoes = await master.operate(
            analogs=[AnalogOutput(ao.index, 555, AnalogVariation.INT32)], mode=OperateMode.DIRECT_OPERATE
        )
        assert echoes[0].value == 555
        with pytest.raises(CommandRejected) as info:
            await master.operate(analogs=[AnalogOutput(ao.index, 5000, AnalogVariation.INT32)])
        assert info.value.stage == "SELECT"
        assert info.value.echoes[0].status is CommandStatus.OUT_OF_RANGE
        assert plant.outstation.ao_store.get(ao.index).value == 555  # the refused value was not applied


async def test_plant_reports_events_unsolicited_once_enabled(plant: SimulatedPlant) -> None:
    p = plant.points.get(PointKind.ANALOG_INPUT, AI_ACTIVE_POWER)
    async with Dnp3Master("127.0.0.1", plant.port, outstation_address=10) as master:
        await master.integrity_poll()
        plant.model.pv_available_w = 1_234_000.0
        plant.sync(1.0)
        assert await master.listen_unsolicited(0.5) is None  # not enabled yet: nothing sent
        await master.enable_unsolicited()
        plant.model.pv_available_w = 2_345_000.0
        plant.sync(1.0)
        for _ in range(20):
            if await master.listen_unsolicited(0.5) is not None:
                value = master.values[(ValueKind.ANALOG_INPUT, p.index)]
                if value.unsolicited and value.value == 2_345_000.0:
                    break
        else:
            raise AssertionError("no unsolicited event with the new output")


async def test_time_write_and_restart_clear_answer_the_iin_bits(plant: SimulatedPlant) -> None:
    async with Dnp3Master("127.0.0.1", plant.port, outstation_address=10) as master:
        infos = await master.integrity_poll()
        assert Dnp3Master.needs_time(infos) and Dnp3Master.restarted(infos)
        await master.write_time(datetime(2026, 7, 1, 12, tzinfo=UTC))
        await master.clear_restart()
        infos = await master.class_poll()
        assert not Dnp3Master.needs_time(infos) and not Dnp3Master.restarted(infos)
