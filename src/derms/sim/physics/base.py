"""Shared helpers for the columnar device models: every model is a dataclass of equal-length arrays."""

from __future__ import annotations

import dataclasses
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

type FloatArray = NDArray[np.float64]
type BoolArray = NDArray[np.bool_]


class Columns:
    """Mixin for slotted dataclasses whose every field is a 1-D array, one row per device."""

    def __len__(self) -> int:
        first = dataclasses.fields(self)[0]  # type: ignore[arg-type]
        return len(getattr(self, first.name))

    def concat(self, other: Self) -> Self:
        """Rows of ``self`` followed by rows of ``other`` (used when devices are added)."""
        values: dict[str, Any] = {
            f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)])
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        }
        return type(self)(**values)
