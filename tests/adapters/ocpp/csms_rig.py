"""What the CSMS tests share: charge-point passwords and a recorder of the bus messages."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from derms.bus.base import Message

PASSWORDS = {"SIM16": "pw-16", "SIM201": "pw-201", "RAW": "pw-raw"}


class Seen:
    """Every bus message, and a wait for one that matches."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    async def wait(self, predicate: Callable[[Message], bool]) -> Message:
        async with asyncio.timeout(30):
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                await asyncio.sleep(0.02)
