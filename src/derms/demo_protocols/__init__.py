"""``derms demo``'s protocol devices: part of the fleet runs through the real protocol stacks.

Simulated IEEE 2030.5 clients (mTLS), OpenADR 2.0b VENs, OCPP charge points, SunSpec Modbus
inverters and batteries, a DNP3 MESA-DER plant and CTA-2045 water heaters run on loopback
against the platform's own adapters; see ``docs/demo.md``.
"""

from derms.demo_protocols.base import DeviceGroup, Placement
from derms.demo_protocols.fleet import (
    GROUPS,
    ProtocolFleet,
    ProtocolRun,
    device_counts,
    place,
    prepare_protocol_fleet,
)

__all__ = [
    "GROUPS",
    "DeviceGroup",
    "Placement",
    "ProtocolFleet",
    "ProtocolRun",
    "device_counts",
    "place",
    "prepare_protocol_fleet",
]
