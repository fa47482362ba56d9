"""Fixtures for the OpenADR tests: the 2.0b schema from the openleadr peer, a manual clock."""

from __future__ import annotations

import pytest

from derms.adapters.openadr.oadr20b.schema import SchemaValidator, find_schema
from derms.core.clock import ManualClock
from tests.adapters.openadr.openadr_samples import T0


@pytest.fixture(scope="session")
def validator() -> SchemaValidator:
    path = find_schema()
    if path is None:
        pytest.skip("oadr_20b.xsd not found: run scripts/peers/openleadr.sh or set DERMS_OADR20B_XSD")
    return SchemaValidator(path)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)
