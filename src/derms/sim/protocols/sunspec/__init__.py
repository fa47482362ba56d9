"""Simulated SunSpec inverters and batteries: pymodbus servers on loopback, one device each."""

from derms.sim.protocols.sunspec.image import build_image
from derms.sim.protocols.sunspec.inverter import (
    DeviceModel,
    DevicePhysics,
    SunSpecDeviceServer,
    battery_inverter,
    model_list,
    pv_inverter,
)
from derms.sim.protocols.sunspec.physics import FleetDevice, fleet_device

__all__ = [
    "DeviceModel",
    "DevicePhysics",
    "FleetDevice",
    "SunSpecDeviceServer",
    "battery_inverter",
    "build_image",
    "fleet_device",
    "model_list",
    "pv_inverter",
]
