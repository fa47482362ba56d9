"""Live fleet state as columnar arrays, one row per DER, updated from bus events.

The orchestrator and the console read it without touching the database.
"""

from derms.fleet.rollup import FeederRollup, rollup
from derms.fleet.state import KIND_CODES, FleetState

__all__ = ["KIND_CODES", "FeederRollup", "FleetState", "rollup"]
