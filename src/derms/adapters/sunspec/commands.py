"""The SunSpec native command: point writes, applied in order, each verified by reading back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PointWrite:
    """Set ``path`` of model ``model_id`` (first instance) to ``value`` in engineering units."""

    model_id: int
    path: str
    value: float | int | str


@dataclass(frozen=True, slots=True)
class SunSpecWrite:
    writes: tuple[PointWrite, ...]

    def __post_init__(self) -> None:
        if not self.writes:
            raise ValueError("a SunSpec command needs at least one point write")
