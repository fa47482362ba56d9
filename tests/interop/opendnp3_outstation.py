"""Drive an opendnp3 outstation (dnp3-python 0.3.0b2 / pydnp3) as a separate process.

Runs under the peer environment's Python 3.10 (``.peers/opendnp3``), never imported by
derms. Protocol on stdio, one line each:

* stdout (opendnp3's console logger writes there too, so readers skip lines that are
  neither ``ready`` nor JSON): ``ready`` once the outstation listens; ``{"op": ..., "index": ..., ...}`` JSON for
  every control the outstation receives (SELECT and OPERATE), after the command handler
  returned its status.
* stdin ``analog <index> <value>``, ``binary <index> <0|1>`` update a point (creating an
  event, which opendnp3 reports unsolicited when enabled); ``quit`` shuts down.

Analog outputs above ``--ao-max`` are refused with OUT_OF_RANGE so the master's handling of
a rejected control can be exercised.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from pydnp3 import asiodnp3, asiopal, opendnp3, openpal

N_POINTS = 8


def emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


class CommandHandler(opendnp3.ICommandHandler):
    def __init__(self, ao_max: float) -> None:
        super().__init__()
        self.ao_max = ao_max
        self.outstation = None

    def Start(self) -> None:
        pass

    def End(self) -> None:
        pass

    def _handle(self, stage: str, command, index: int) -> opendnp3.CommandStatus:
        if isinstance(command, opendnp3.ControlRelayOutputBlock):
            record = {"op": stage, "type": "crob", "index": index, "code": int(command.rawCode)}
            status = opendnp3.CommandStatus.SUCCESS
            if stage == "operate" and self.outstation is not None:
                on = command.functionCode in (
                    opendnp3.ControlCode.LATCH_ON,
                    opendnp3.ControlCode.PULSE_ON,
                    opendnp3.ControlCode.CLOSE_PULSE_ON,
                )
                update = asiodnp3.UpdateBuilder().Update(opendnp3.BinaryOutputStatus(on), index).Build()
                self.outstation.Apply(update)
        else:
            record = {"op": stage, "type": type(command).__name__, "index": index, "value": command.value}
            if command.value > self.ao_max:
                status = opendnp3.CommandStatus.OUT_OF_RANGE
            else:
                status = opendnp3.CommandStatus.SUCCESS
                if stage == "operate" and self.outstation is not None:
                    update = (
                        asiodnp3.UpdateBuilder()
                        .Update(opendnp3.AnalogOutputStatus(command.value), index)
                        .Build()
                    )
                    self.outstation.Apply(update)
        record["status"] = int(opendnp3.CommandStatusToType(status))
        emit(record)
        return status

    def Select(self, command, index):
        return self._handle("select", command, index)

    def Operate(self, command, index, op_type):
        return self._handle("operate", command, index)


class Application(opendnp3.IOutstationApplication):
    def __init__(self) -> None:
        super().__init__()


class Listener(asiodnp3.IChannelListener):
    def __init__(self) -> None:
        super().__init__()

    def OnStateChange(self, state) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--outstation", type=int, default=1)
    parser.add_argument("--master", type=int, default=2)
    parser.add_argument("--ao-max", type=float, default=1e6)
    args = parser.parse_args()

    sizes = opendnp3.DatabaseSizes(
        numBinary=N_POINTS,
        numDoubleBinary=0,
        numAnalog=N_POINTS,
        numCounter=0,
        numFrozenCounter=0,
        numBinaryOutputStatus=N_POINTS,
        numAnalogOutputStatus=N_POINTS,
        numTimeAndInterval=0,
    )
    config = asiodnp3.OutstationStackConfig(sizes)
    config.outstation.eventBufferConfig = opendnp3.EventBufferConfig().AllTypes(100)
    config.outstation.params.allowUnsolicited = True
    config.link.LocalAddr = args.outstation
    config.link.RemoteAddr = args.master
    config.link.KeepAliveTimeout = openpal.TimeDuration().Max()
    # The binding hands out copies of the database point configs, so default variations
    # cannot be changed here: analogs stay g30v1/g32v1 (32-bit integers) and the master
    # asks for float variations explicitly.

    # Keep a Python reference to every object handed to the C++ stack, or pybind11 calls a
    # collected trampoline ("pure virtual function") from the stack's thread.
    logger = asiodnp3.ConsoleLogger().Create()
    manager = asiodnp3.DNP3Manager(1, logger)
    listener = Listener()
    channel = manager.AddTCPServer(
        "server",
        opendnp3.levels.NOTHING,
        asiopal.ChannelRetry().Default(),
        "127.0.0.1",
        args.port,
        listener,
    )
    handler = CommandHandler(args.ao_max)
    application = Application()
    outstation = channel.AddOutstation("outstation", handler, application, config)
    handler.outstation = outstation
    outstation.Enable()
    sys.stdout.write("ready\n")
    sys.stdout.flush()

    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        index, value = int(parts[1]), parts[2]
        if parts[0] == "analog":
            update = asiodnp3.UpdateBuilder().Update(opendnp3.Analog(float(value)), index).Build()
        elif parts[0] == "binary":
            update = asiodnp3.UpdateBuilder().Update(opendnp3.Binary(value == "1"), index).Build()
        else:
            continue
        outstation.Apply(update)
        emit({"op": "applied", "kind": parts[0], "index": index})
    outstation.Shutdown()
    channel.Shutdown()
    sys.stdout.flush()
    # DNP3Manager teardown in the 0.3.0b2 binding double-frees; leave without it.
    os._exit(0)


if __name__ == "__main__":
    main()
