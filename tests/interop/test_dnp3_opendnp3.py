"""Our DNP3 master against the opendnp3 outstation (dnp3-python 0.3.0b2, Python 3.10).

The outstation runs as a separate process from the peer environment created by
``scripts/peers/opendnp3.sh``, driven by ``opendnp3_outstation.py`` over stdio.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dnp3.transport_io.channel import ChannelError

from derms.adapters.dnp3.codec import AnalogOutput, Crob
from derms.adapters.dnp3.master import CommandRejected, Dnp3Master, OperateMode, ValueKind

ROOT = Path(__file__).resolve().parents[2]
PEER_PYTHON = ROOT / ".peers" / "opendnp3" / "bin" / "python"
DRIVER = Path(__file__).with_name("opendnp3_outstation.py")

pytestmark = [
    pytest.mark.interop,
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        not PEER_PYTHON.exists(), reason="opendnp3 peer not installed (scripts/peers/opendnp3.sh)"
    ),
]


class Outstation:
    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port

    async def line(self) -> dict[str, Any]:
        """Next JSON record from the driver (opendnp3's own log lines are skipped)."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(10):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise EOFError("opendnp3 driver exited")
                if raw.startswith(b"{"):
                    return json.loads(raw)

    async def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def outstation() -> AsyncIterator[Outstation]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        str(PEER_PYTHON),
        str(DRIVER),
        "--port",
        str(port),
        "--ao-max",
        "1000",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        while not (await proc.stdout.readline()).startswith(b"ready"):
            pass
    try:
        yield Outstation(proc, port)
    finally:
        if proc.returncode is None:
            await Outstation(proc, port).send("quit")
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def connect(port: int) -> Dnp3Master:
    """opendnp3 starts listening shortly after it prints ready; retry the connect."""
    for _ in range(100):
        master = Dnp3Master("127.0.0.1", port, outstation_address=1, master_address=2)
        try:
            await master.open()
            return master
        except ChannelError:  # connection refused until the acceptor is up
            await asyncio.sleep(0.05)
    raise AssertionError("could not connect to the opendnp3 outstation")


async def test_integrity_float_reads_and_unsolicited_events(outstation: Outstation) -> None:
    master = await connect(outstation.port)
    try:
        infos = await master.integrity_poll()
        assert Dnp3Master.restarted(infos)
        await master.clear_restart()
        assert not Dnp3Master.restarted(await master.class_poll())
        assert {k[0] for k in master.values} >= {
            ValueKind.ANALOG_INPUT,
            ValueKind.BINARY_INPUT,
            ValueKind.BINARY_OUTPUT,
            ValueKind.ANALOG_OUTPUT,
        }
        await master.enable_unsolicited()
        await outstation.send("analog 3 12.5")
        await outstation.send("binary 1 1")
        got: set[tuple[ValueKind, int]] = set()
        for _ in range(20):
            info = await master.listen_unsolicited(0.5)
            if info is not None:
                got |= {(v.kind, v.index) for v in master.values.values() if v.unsolicited}
            if {(ValueKind.ANALOG_INPUT, 3), (ValueKind.BINARY_INPUT, 1)} <= got:
                break
        assert master.values[(ValueKind.BINARY_INPUT, 1)].value == 1.0
        # opendnp3's default event variation is g32v1 (32-bit integer): 12.5 arrives as 12.
        assert master.values[(ValueKind.ANALOG_INPUT, 3)].value == 12.0
        # Asking for g30v5 (float) returns the exact value.
        await master.read((30, 5))
        assert master.values[(ValueKind.ANALOG_INPUT, 3)].value == 12.5
        assert master.values[(ValueKind.ANALOG_INPUT, 3)].online
    finally:
        await master.close()


async def test_select_before_operate_direct_operate_and_refusal(outstation: Outstation) -> None:
    master = await connect(outstation.port)
    try:
        echoes = await master.operate(analogs=[AnalogOutput(1, 42.25)], crobs=[Crob(2)])
        assert [e.ok for e in echoes] == [True, True]
        seen = [await outstation.line() for _ in range(4)]
        assert [(r["op"], r["index"]) for r in seen] == [
            ("select", 1),
            ("select", 2),
            ("operate", 1),
            ("operate", 2),
        ]
        assert seen[2]["type"] == "AnalogOutputFloat32" and seen[2]["value"] == 42.25

        await master.operate(analogs=[AnalogOutput(4, 7.5)], mode=OperateMode.DIRECT_OPERATE)
        record = await outstation.line()
        assert (record["op"], record["index"], record["value"]) == ("operate", 4, 7.5)

        with pytest.raises(CommandRejected, match="OUT_OF_RANGE"):
            await master.operate(analogs=[AnalogOutput(1, 4200.0)], mode=OperateMode.DIRECT_OPERATE)

        await master.read((40, 3), (10, 2))
        assert master.values[(ValueKind.ANALOG_OUTPUT, 1)].value == 42.25
        assert master.values[(ValueKind.ANALOG_OUTPUT, 4)].value == 7.5
        assert master.values[(ValueKind.BINARY_OUTPUT, 2)].value == 1.0
    finally:
        await master.close()
