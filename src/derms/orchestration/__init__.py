"""Orchestration: objectives to explained device setpoints that respect physics, contracts,
customers and the grid; dispatch tracking; re-optimization; replay.

Modules, one job each: ``inputs`` (typed columnar fleet and preference arrays),
``flexibility`` (per-device generalized-battery models), ``preferences`` (opt-out masks),
``objectives`` (core objectives to targets), ``grid`` (linear grid rows), ``problem`` and
``optimizer`` (the aggregated HiGHS LP), ``greedy`` (merit-order fallback), ``solution``,
``reoptimize`` (affected feeders only), ``ac`` (AC power-flow check on ``derms.grid``),
``plan`` (setpoints and reasons), ``replay`` (recorded inputs), ``tables`` and ``tracker``
(commands through the bridge and adapters), ``engine`` (the event-driven orchestrator),
``synthetic`` (seeded fleets for benchmarks and tests).
"""
