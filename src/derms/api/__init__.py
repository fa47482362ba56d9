"""REST API (FastAPI): registry, telemetry, fleet roll-ups, commands, audit, health and metrics.

Every data route needs a bearer API token; roles are viewer < operator < admin; aggregator
tenants see only their own resources; errors are RFC 9457 ``application/problem+json``.
"""
