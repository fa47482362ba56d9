"""Customers and sites (service points) and their place in the network."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    """Phase connection of a service point (ABC for three-phase)."""

    A = "A"
    B = "B"
    C = "C"
    ABC = "ABC"


@dataclass(frozen=True, slots=True)
class Customer:
    """The account holder at one or more sites; belongs to one tenant (utility or aggregator)."""

    id: str
    tenant_id: str
    name: str
    email: str = ""


@dataclass(frozen=True, slots=True)
class Site:
    """A service point: where a customer's DERs connect to the network.

    ``bus`` is the network bus the site connects to (the grid model's bus id as a string),
    ``feeder_id`` the feeder it is traced to; both may be unknown (``None``) until the
    site is mapped to the network.
    """

    id: str
    customer_id: str
    tenant_id: str
    latitude: float | None = None
    longitude: float | None = None
    feeder_id: str | None = None
    bus: str | None = None
    phase: Phase = Phase.ABC
    meter_id: str | None = None
    import_limit_w: float | None = None
    """Contracted import limit at the connection point [W]."""
    export_limit_w: float | None = None
    """Contracted export limit at the connection point [W]."""

    def __post_init__(self) -> None:
        if self.latitude is not None and not -90 <= self.latitude <= 90:
            raise ValueError("latitude must be within [-90, 90]")
        if self.longitude is not None and not -180 <= self.longitude <= 180:
            raise ValueError("longitude must be within [-180, 180]")
