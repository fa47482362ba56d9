"""Reference adapter for simulated devices: the platform runs end to end on :mod:`derms.sim`."""

from derms.adapters.simulated.adapter import PROTOCOL, SimulatedAdapter, create_adapter
from derms.adapters.simulated.settings import SimulatedSettings

__all__ = ["PROTOCOL", "SimulatedAdapter", "SimulatedSettings", "create_adapter"]
