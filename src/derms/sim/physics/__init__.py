"""Vectorised device physics, one array row per device (see each module for its model and sources)."""

from derms.sim.physics.battery import BatteryBank
from derms.sim.physics.ci_load import CiLoads
from derms.sim.physics.ev import EvChargers
from derms.sim.physics.hvac import Hvac, first_order_step
from derms.sim.physics.pv import PvArrays
from derms.sim.physics.water_heater import WaterHeaters

__all__ = ["BatteryBank", "CiLoads", "EvChargers", "Hvac", "PvArrays", "WaterHeaters", "first_order_step"]
