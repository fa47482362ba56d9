"""The bus interface shared by the in-process and NATS implementations."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Message:
    """A delivered event: its subject, JSON-compatible payload, and publish time (UTC)."""

    subject: str
    data: Any
    published_at: datetime


type Handler = Callable[[Message], Awaitable[None]]


class Subscription(abc.ABC):
    """Handle returned by :meth:`Bus.subscribe`."""

    @abc.abstractmethod
    async def unsubscribe(self) -> None: ...


class Bus(abc.ABC):
    """Publish/subscribe. Handlers of one subscription run one message at a time, in order.

    A handler that raises is logged and does not stop the subscription.
    """

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, subject: str, data: Any) -> None:
        """Publish ``data`` (JSON-compatible) on ``subject`` (no wildcards)."""

    @abc.abstractmethod
    async def subscribe(self, pattern: str, handler: Handler, *, durable: str | None = None) -> Subscription:
        """Deliver every message whose subject matches ``pattern`` to ``handler``.

        ``durable`` names a consumer that survives restarts where the implementation
        persists messages (JetStream); the in-process bus ignores it.
        """

    async def __aenter__(self) -> Bus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def validate_subject(subject: str, *, wildcards: bool) -> None:
    tokens = subject.split(".")
    if not subject or any(not t for t in tokens) or any(c.isspace() for c in subject):
        raise ValueError(f"invalid subject {subject!r}")
    if not wildcards and any(t in ("*", ">") for t in tokens):
        raise ValueError(f"wildcards are not allowed when publishing: {subject!r}")
    if wildcards and ">" in tokens[:-1]:
        raise ValueError(f"'>' may only be the last token: {subject!r}")


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` matches one token, a final ``>`` one or more."""
    p_tokens = pattern.split(".")
    s_tokens = subject.split(".")
    for i, token in enumerate(p_tokens):
        if token == ">":
            return len(s_tokens) > i
        if i >= len(s_tokens) or (token != "*" and token != s_tokens[i]):
            return False
    return len(p_tokens) == len(s_tokens)
