"""The fleet simulator: device physics, a fleet stepping on an injectable clock, scenarios."""
