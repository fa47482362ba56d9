"""SunSpec Modbus master on pymodbus: discover the model chain, read models, write and verify.

Discovery follows the SunSpec Modbus specification (v1.0 clause 5): look for ``SunS`` at
40000, then 0, then 50000; walk ID/L headers until the end model (ID 0xFFFF, L 0). Reads are
split into blocks of at most 125 registers (Modbus application protocol 6.3). Every write is
read back and compared register by register.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from derms.adapters.sunspec.models import (
    END_MODEL_ID,
    SUNS_MARKER,
    ModelBlock,
    SunSpecError,
    decode_model,
    model_def,
)

log = logging.getLogger(__name__)

BASE_ADDRESSES = (40000, 0, 50000)
MAX_READ = 125
MAX_WRITE = 123


class DeviceError(Exception):
    """The device did not answer, answered with an exception, or did not take a write."""


@dataclass(frozen=True, slots=True)
class ModelHeader:
    model_id: int
    address: int
    length: int


class SunSpecClient:
    """One Modbus TCP device (``host:port``, unit ``device_id``) speaking SunSpec."""

    def __init__(self, host: str, port: int, device_id: int = 1, *, timeout_s: float = 2.0, retries: int = 1):
        self.host = host
        self.port = port
        self.device_id = device_id
        self._client = AsyncModbusTcpClient(
            host,
            port=port,
            timeout=timeout_s,
            retries=retries,
            reconnect_delay=0,
            name=f"sunspec {host}:{port}",
        )
        self.base: int | None = None
        self.headers: list[ModelHeader] = []
        self.models: dict[int, list[ModelBlock]] = {}

    @property
    def connected(self) -> bool:
        return bool(self._client.connected)

    async def connect(self) -> None:
        if not await self._client.connect():
            raise DeviceError(f"cannot connect to {self.host}:{self.port}")

    def close(self) -> None:
        self._client.close()

    async def __aenter__(self) -> SunSpecClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    async def read(self, address: int, count: int) -> list[int]:
        """Holding registers ``[address, address + count)``, in blocks of at most 125."""
        out: list[int] = []
        while count > 0:
            n = min(count, MAX_READ)
            try:
                response = await self._client.read_holding_registers(
                    address, count=n, device_id=self.device_id
                )
            except ModbusException as exc:
                raise DeviceError(f"{self.host}:{self.port} read {address}+{n}: {exc}") from exc
            if response.isError():
                raise DeviceError(f"{self.host}:{self.port} read {address}+{n}: exception {response}")
            if len(response.registers) < n:
                raise DeviceError(f"{self.host}:{self.port} read {address}+{n}: short answer")
            out.extend(response.registers[:n])
            address += n
            count -= n
        return out

    async def write(self, address: int, registers: list[int]) -> None:
        """Write registers (function 16) and verify by reading them back."""
        for start in range(0, len(registers), MAX_WRITE):
            chunk = registers[start : start + MAX_WRITE]
            try:
                response = await self._client.write_registers(
                    address + start, chunk, device_id=self.device_id
                )
            except ModbusException as exc:
                raise DeviceError(f"{self.host}:{self.port} write {address + start}: {exc}") from exc
            if response.isError():
                raise DeviceError(f"{self.host}:{self.port} write {address + start} refused: {response}")
        back = await self.read(address, len(registers))
        if back != registers:
            raise DeviceError(f"{self.host}:{self.port} write {address}: read back {back}, wrote {registers}")

    async def discover(self) -> list[ModelHeader]:
        """Find the base address and walk the model chain."""
        for base in BASE_ADDRESSES:
            try:
                marker = await self.read(base, 2)
            except DeviceError:
                continue
            if tuple(marker) == SUNS_MARKER:
                self.base = base
                break
        else:
            raise DeviceError(f"{self.host}:{self.port}: no SunS marker at {BASE_ADDRESSES}")
        headers: list[ModelHeader] = []
        address = self.base + 2
        for _ in range(1000):
            model_id, length = await self.read(address, 2)
            if model_id == END_MODEL_ID:
                break
            headers.append(ModelHeader(model_id, address, length))
            address += length + 2
        else:
            raise SunSpecError("model chain does not end")
        self.headers = headers
        return headers

    async def read_model(self, header: ModelHeader) -> ModelBlock:
        registers = await self.read(header.address, header.length + 2)
        return decode_model(header.address, registers)

    async def read_models(self, model_ids: set[int] | None = None) -> dict[int, list[ModelBlock]]:
        """Read (and decode) every discovered model, or those in ``model_ids``; unknown models are skipped."""
        if not self.headers:
            await self.discover()
        models: dict[int, list[ModelBlock]] = {}
        for header in self.headers:
            if model_ids is not None and header.model_id not in model_ids:
                continue
            try:
                model_def(header.model_id)
            except KeyError:
                log.info("%s:%s model %s has no definition; skipped", self.host, self.port, header.model_id)
                continue
            models.setdefault(header.model_id, []).append(await self.read_model(header))
        self.models.update(models)
        return models

    def model(self, model_id: int, index: int = 0) -> ModelBlock:
        try:
            return self.models[model_id][index]
        except (KeyError, IndexError):
            raise KeyError(f"model {model_id} not read from {self.host}:{self.port}") from None

    async def write_point(self, model_id: int, path: str, value: float | int | str) -> float | int | str:
        """Scale, write, verify and re-read one point; returns the value the device now holds."""
        block = self.model(model_id)
        address, registers, _ = block.encode(path, value)
        await self.write(address, registers)
        header = next(h for h in self.headers if h.address == block.address)
        fresh = await self.read_model(header)
        self.models[model_id][0] = fresh
        return fresh.value(path)


async def gather_limited(coros: list, limit: int) -> list:  # type: ignore[type-arg]
    """Run coroutines with at most ``limit`` in flight; exceptions are returned, not raised."""
    semaphore = asyncio.Semaphore(limit)

    async def one(coro):  # type: ignore[no-untyped-def]
        async with semaphore:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros), return_exceptions=True)
