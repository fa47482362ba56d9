"""Simulated SunSpec inverters and batteries: pymodbus servers on loopback, one device each."""

from derms.sim.protocols.sunspec.image import build_image
from derms.sim.protocols.sunspec.inverter import (
    DeviceModel,
    SunSpecDeviceServer,
    battery_inverter,
    pv_inverter,
)

__all__ = ["DeviceModel", "SunSpecDeviceServer", "battery_inverter", "build_image", "pv_inverter"]
