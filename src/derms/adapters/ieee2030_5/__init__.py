"""IEEE 2030.5 / CSIP utility server (Rule 21) with the CSIP-AUS extensions."""

from derms.adapters.ieee2030_5 import _namespace  # noqa: F401  (must precede envoy-schema models)
from derms.adapters.ieee2030_5.adapter import (
    PROTOCOL,
    Ieee2030_5Adapter,
    Ieee2030_5Settings,
    create_adapter,
)

__all__ = ["PROTOCOL", "Ieee2030_5Adapter", "Ieee2030_5Settings", "create_adapter"]
