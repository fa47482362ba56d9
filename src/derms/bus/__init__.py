"""Publish/subscribe of platform events.

Subjects are dot-separated tokens (NATS style); subscriptions may use ``*`` for one token and
``>`` for the rest. Payloads are JSON-compatible values and must be treated as immutable.
The in-process :class:`MemoryBus` is the embedded default; :class:`NatsBus` runs the same
interface over NATS JetStream for several processes or hosts.
"""

from derms.bus.base import Bus, Handler, Message, Subscription, subject_matches
from derms.bus.memory import MemoryBus

__all__ = ["Bus", "Handler", "MemoryBus", "Message", "Subscription", "subject_matches"]
