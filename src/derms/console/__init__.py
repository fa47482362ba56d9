"""The operator console: situational awareness, interventions, the heat-event drill,
reports and plots, served under ``/console`` by the same app as the API."""

from derms.console.routes import attach, router

__all__ = ["attach", "router"]
