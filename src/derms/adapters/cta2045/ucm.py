"""A CTA-2045-B UCM: sends DR commands to one SGD and waits for its application response.

Each request is link-acknowledged by the SGD (:mod:`derms.adapters.cta2045.link`), then
answered at the application layer: Basic DR commands with an application ACK naming the
command's opcode or an application NAK (CTA-2045-B 10.2), the operational state query with
a state response, Intermediate DR requests with their reply (opcode2 0x80). Messages the SGD
sends on its own (customer override, state changes) are kept in :attr:`Ucm.unsolicited` and
answered with an application ACK; a customer override sets :attr:`Ucm.customer_override`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from cta2045 import app
from cta2045.app import AdvancedLoadUp, BasicDR, CommodityReadReply, CommodityReport, IntermediateDR, Message
from cta2045.codec import CodecError, Duration
from cta2045.enums import AdvancedLoadUpUnits, BasicDRCategory, IntermediateDRResponseCode, OperationalState

from derms.adapters.cta2045.link import LinkEndpoint, LinkError
from derms.adapters.cta2045.messages import app_ack, basic, commodity_read_request
from derms.core.tasks import cancel_and_wait

logger = logging.getLogger(__name__)


class ApplicationNak(Exception):
    def __init__(self, what: str, reason: int) -> None:
        super().__init__(f"{what} refused by the SGD (application NAK reason {reason})")
        self.reason = reason


class ResponseTimeout(LinkError):
    pass


@dataclass
class _Waiter:
    match: Callable[[Message], bool]
    future: asyncio.Future[Message]


class Ucm:
    """The UCM side of one CTA-2045 link."""

    def __init__(self, link: LinkEndpoint, *, response_timeout_s: float = 3.0) -> None:
        self.link = link
        self.response_timeout_s = response_timeout_s
        self.unsolicited: list[Message] = []
        self.customer_override = False
        self._waiters: list[_Waiter] = []
        self._lock = asyncio.Lock()
        self._task = asyncio.create_task(self._dispatch(), name=f"{link.name}-ucm")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        await self.link.close()

    async def _dispatch(self) -> None:
        while True:
            frame = await self.link.inbox.get()
            try:
                message, _ = app.decode(frame)
            except CodecError as exc:
                logger.warning("%s: undecodable message %s: %s", self.link.name, frame.hex(), exc)
                continue
            for waiter in self._waiters:
                if not waiter.future.done() and waiter.match(message):
                    waiter.future.set_result(message)
                    break
            else:
                self.unsolicited.append(message)
                await self._on_unsolicited(message)

    async def _on_unsolicited(self, message: Message) -> None:
        """Track customer override (Basic DR 0x11; opcode2 1 = overridden) and answer any
        Basic DR message from the SGD with an application ACK (CTA-2045-B 10.2)."""
        if not isinstance(message, BasicDR) or message.category in (BasicDRCategory.ACK, BasicDRCategory.NAK):
            return
        if message.category is BasicDRCategory.Customer_Override:
            self.customer_override = message.opcode2 != 0
            logger.info("%s: customer override %s", self.link.name, "on" if self.customer_override else "off")
        if message.opcode1 is not None:
            try:
                await self.link.send(app_ack(message.opcode1))
            except LinkError as exc:
                logger.warning("%s: application ACK not delivered: %s", self.link.name, exc)

    async def _request(self, frame: bytes, match: Callable[[Message], bool]) -> Message:
        async with self._lock:
            waiter = _Waiter(match, asyncio.get_running_loop().create_future())
            self._waiters.append(waiter)
            try:
                await self.link.send(frame)
                return await asyncio.wait_for(waiter.future, self.response_timeout_s)
            except TimeoutError as exc:
                raise ResponseTimeout(f"no application response within {self.response_timeout_s} s") from exc
            finally:
                self._waiters.remove(waiter)

    async def _basic_command(self, message: BasicDR) -> Duration | None:
        opcode = message.opcode1

        def answers(m: Message) -> bool:
            return isinstance(m, BasicDR) and (
                (m.category is BasicDRCategory.ACK and m.opcode2 == opcode)
                or m.category is BasicDRCategory.NAK
            )

        reply = await self._request(message.to_bytes(), answers)
        assert isinstance(reply, BasicDR)
        if reply.category is BasicDRCategory.NAK:
            raise ApplicationNak(
                message.category.name if message.category else hex(opcode or 0), reply.opcode2
            )
        return message.duration

    async def shed(self, duration_s: float | None = None) -> Duration | None:
        return await self._basic_command(app.shed(_duration(duration_s)))

    async def end_shed(self) -> None:
        await self._basic_command(app.end())

    async def load_up(self, duration_s: float | None = None) -> Duration | None:
        return await self._basic_command(app.load_up(_duration(duration_s)))

    async def critical_peak(self, duration_s: float | None = None) -> Duration | None:
        return await self._basic_command(app.critical_peak(_duration(duration_s)))

    async def grid_emergency(self, duration_s: float | None = None) -> Duration | None:
        return await self._basic_command(app.grid_emergency(_duration(duration_s)))

    async def power_level(self, percent: int) -> None:
        await self._basic_command(app.power_level(percent))

    async def advanced_load_up(self, duration_minutes: int, value: int, units: AdvancedLoadUpUnits) -> None:
        """SetAdvancedLoadUp: store ``value × units`` Wh over ``duration_minutes`` (11.6.3)."""
        message = app.advanced_load_up(duration_minutes, value, units)

        def answers(m: Message) -> bool:
            return (
                isinstance(m, IntermediateDR)
                and isinstance(m.body, AdvancedLoadUp)
                and m.body.opcode2 == 0x80
            )

        reply = await self._request(message.to_bytes(), answers)
        if isinstance(reply, BasicDR):
            raise ApplicationNak("advanced load up", reply.opcode2)
        assert isinstance(reply, IntermediateDR) and isinstance(reply.body, AdvancedLoadUp)
        code = reply.body.response_code
        if code not in (IntermediateDRResponseCode.Success, 0):
            raise ApplicationNak("advanced load up", code.value if hasattr(code, "value") else int(code or 0))

    async def commodity_read(self) -> list[CommodityReport]:
        """Get CommodityRead (CTA-2045.3 11.3.1): instantaneous and cumulative per commodity."""

        def answers(m: Message) -> bool:
            return (
                isinstance(m, IntermediateDR)
                and isinstance(m.body, CommodityReadReply)
                and m.body.opcode2 == 0x80
            )

        reply = await self._request(commodity_read_request(), answers)
        assert isinstance(reply, IntermediateDR) and isinstance(reply.body, CommodityReadReply)
        if reply.body.response_code not in (IntermediateDRResponseCode.Success, 0):
            raise ApplicationNak("commodity read", int(getattr(reply.body.response_code, "value", 6)))
        return reply.body.reports

    async def operational_state(self) -> OperationalState | int:
        """Operational state query (Basic DR 0x12 → 0x13)."""

        def answers(m: Message) -> bool:
            return isinstance(m, BasicDR) and m.category in (
                BasicDRCategory.State_Query_Response,
                BasicDRCategory.NAK,
            )

        reply = await self._request(basic(BasicDRCategory.Operational_State_Query), answers)
        assert isinstance(reply, BasicDR)
        if reply.category is BasicDRCategory.NAK:
            raise ApplicationNak("operational state query", reply.opcode2)
        state = reply.operational_state
        assert state is not None
        return state


def _app_nak(message: Message) -> bool:
    return isinstance(message, BasicDR) and message.category is BasicDRCategory.NAK


def _duration(seconds: float | None) -> Duration:
    return Duration.unknown() if seconds is None else Duration.of_seconds(round(seconds))
