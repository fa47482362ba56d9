"""Simulated DNP3 devices: a MESA-DER plant controller outstation."""

from derms.sim.protocols.dnp3.plant import PlantModel, SimulatedPlant

__all__ = ["PlantModel", "SimulatedPlant"]
