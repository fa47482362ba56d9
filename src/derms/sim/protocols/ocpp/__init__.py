"""Simulated OCPP charge points: real 1.6J/2.0.1 websocket clients with a profile store."""

from derms.sim.protocols.ocpp.charge_point import SimChargePoint
from derms.sim.protocols.ocpp.composite import ProfileStore

__all__ = ["ProfileStore", "SimChargePoint"]
