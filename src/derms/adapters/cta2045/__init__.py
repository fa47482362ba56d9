"""CTA-2045-B UCM adapter: link layer, DR commands and commodity reads for SGDs."""

from derms.adapters.cta2045.adapter import (
    Action,
    Cta2045Adapter,
    Cta2045Command,
    Cta2045Settings,
    create_adapter,
)
from derms.adapters.cta2045.link import LinkEndpoint, LinkError, open_tcp
from derms.adapters.cta2045.ucm import ApplicationNak, Ucm

__all__ = [
    "Action",
    "ApplicationNak",
    "Cta2045Adapter",
    "Cta2045Command",
    "Cta2045Settings",
    "LinkEndpoint",
    "LinkError",
    "Ucm",
    "create_adapter",
    "open_tcp",
]
