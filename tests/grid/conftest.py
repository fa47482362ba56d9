"""Shared fixtures: the real pandapower-shipped feeders, loaded once per session."""

from __future__ import annotations

import pytest

from derms.grid.model import NetworkModel
from derms.grid.network import load_network


@pytest.fixture(scope="session")
def _oberrhein() -> NetworkModel:
    return load_network("mv_oberrhein")


@pytest.fixture
def oberrhein(_oberrhein: NetworkModel) -> NetworkModel:
    """mv_oberrhein as shipped (load scaling 0.6, its own PV off): a fresh copy per test."""
    return _oberrhein.copy()


@pytest.fixture(scope="session")
def cigre_mv() -> NetworkModel:
    return load_network("cigre_mv")
