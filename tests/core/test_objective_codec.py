"""``objective.created`` payloads: one codec in :mod:`derms.core.events`, shape unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from derms.core.events import decode_objective, encode_objective
from derms.core.objectives import Area, AreaLevel, Objective, ObjectiveKind

START = datetime(2026, 7, 15, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "objective",
    [
        Objective(
            "o-peak",
            ObjectiveKind.PEAK_REDUCTION,
            START,
            timedelta(minutes=15),
            Area(AreaLevel.FEEDER, ("f1", "f2")),
            priority=2,
            target_w=1.5e6,
            source="openadr:ev-1",
            tenant_id="t1",
        ),
        Objective(
            "o-arb", ObjectiveKind.ARBITRAGE, START, timedelta(hours=2), prices=(0.1, 0.42), v_min_pu=0.9
        ),
    ],
)
def test_objective_roundtrip(objective: Objective) -> None:
    data = encode_objective(objective)
    assert set(data) == {
        "id",
        "kind",
        "start",
        "duration_s",
        "area",
        "priority",
        "target_w",
        "v_min_pu",
        "v_max_pu",
        "prices",
        "source",
        "tenant_id",
    }
    assert data["start"] == objective.start.isoformat()
    assert data["duration_s"] == objective.duration.total_seconds()
    assert decode_objective(data) == objective


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"id": "x", "kind": "nonsense", "start": START.isoformat(), "duration_s": 60},
        {"id": "x", "kind": "peak_reduction", "start": START.isoformat(), "duration_s": 60},
        {"id": "x", "kind": "reserve", "start": "yesterday", "duration_s": 60, "target_w": 1},
        {
            "id": "x",
            "kind": "reserve",
            "start": START.isoformat(),
            "duration_s": 60,
            "target_w": 1,
            "area": 3,
        },
    ],
)
def test_malformed_objective_is_refused(broken: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        decode_objective(broken)
