"""A simulated IEEE 2030.5 client device (inverter or battery) speaking to the server over mTLS."""

from derms.sim.protocols.ieee2030_5.client import Sep2Device, Sep2DeviceConfig
from derms.sim.protocols.ieee2030_5.fleet import Sep2Fleet

__all__ = ["Sep2Device", "Sep2DeviceConfig", "Sep2Fleet"]
