"""Serialized 2.0b payloads with slots, so a reply shared by many VENs is built once.

An ``oadrDistributeEvent`` for a set of events is the same bytes for every VEN it goes to
except the ``pyld:requestID``; an idle poll's ``oadrResponse`` differs only in its ``ei:venID``.
A :class:`Template` serializes the payload once with unique markers in those places and fills
them by concatenation (text content, XML-escaped). Unsigned payloads only: a signature covers
the filled bytes, so signed replies are built per message.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from lxml import etree

from derms.adapters.openadr.oadr20b import codec


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[bytes, ...]
    """Serialized payload split at its slots: ``len(parts) == slots + 1``."""

    @classmethod
    def of(cls, slots: int, build: Callable[..., etree._Element]) -> Template:
        """``build(*markers)`` returns the message; each marker must land in one text node, in order."""
        markers = [f"slot{uuid.uuid4().hex}" for _ in range(slots)]
        data = codec.serialize(codec.envelope(build(*markers)))
        parts = []
        for marker in markers:
            head, found, data = data.partition(marker.encode())
            if not found or marker.encode() in data:
                raise ValueError("each slot must appear exactly once, in argument order")
            parts.append(head)
        parts.append(data)
        return cls(tuple(parts))

    def fill(self, *values: str) -> bytes:
        if len(values) != len(self.parts) - 1:
            raise ValueError(f"template has {len(self.parts) - 1} slots, got {len(values)} values")
        out = [self.parts[0]]
        for value, part in zip(values, self.parts[1:], strict=True):
            out.append(escape(value).encode())
            out.append(part)
        return b"".join(out)
