"""Simulated CTA-2045 SGDs: electric water heaters behind a CTA-2045-B link on TCP."""

from derms.sim.protocols.cta2045.water_heater import SimulatedWaterHeater, WaterHeaterSgd

__all__ = ["SimulatedWaterHeater", "WaterHeaterSgd"]
