"""The charge point's side of smart charging: a profile store and the composite schedule.

Stacking and combination follow OCPP 1.6 clause 3.13.2–3.13.4 and 2.0.1 K08: for each purpose
the valid profile with the highest stack level whose schedule covers the instant wins; a
TxProfile overrides the TxDefaultProfile (EVSE-specific before station-wide), and the
station maximum caps the result. Amps convert to watts as ``A · U · phases`` (3 phases when
a period does not say).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from derms.adapters.ocpp.profiles import (
    ChargingProfile,
    CompositeSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
    SchedulePeriod,
)

DEFAULT_PHASES = 3


@dataclass(slots=True)
class ProfileStore:
    """Installed profiles by EVSE (0 = the whole station)."""

    v_nom: float = 230.0
    installed: list[tuple[int, ChargingProfile]] = field(default_factory=list)

    def install(self, evse_id: int, profile: ChargingProfile) -> None:
        """Add a profile, replacing one with the same id or with the same EVSE, purpose and stack level."""
        self.installed = [
            (e, p)
            for e, p in self.installed
            if p.id != profile.id
            and not (e == evse_id and p.purpose == profile.purpose and p.stack_level == profile.stack_level)
        ]
        self.installed.append((evse_id, profile))

    def clear(
        self,
        profile_id: int | None,
        evse_id: int | None,
        purpose: ProfilePurpose | None,
        stack_level: int | None,
    ) -> int:
        """Remove matching profiles (all criteria given must match); returns how many went."""
        before = len(self.installed)

        def matches(evse: int, p: ChargingProfile) -> bool:
            if profile_id is not None:
                return p.id == profile_id
            return (
                (evse_id is None or evse == evse_id)
                and (purpose is None or p.purpose == purpose)
                and (stack_level is None or p.stack_level == stack_level)
            )

        self.installed = [(e, p) for e, p in self.installed if not matches(e, p)]
        return before - len(self.installed)

    def _start(self, profile: ChargingProfile, at: datetime, tx_start: datetime | None) -> datetime:
        if profile.kind is ProfileKind.RECURRING and profile.start is not None:
            period = timedelta(days=7 if profile.recurrency == "Weekly" else 1)
            return profile.start + ((at - profile.start) // period) * period
        if profile.kind is ProfileKind.ABSOLUTE and profile.start is not None:
            return profile.start
        return tx_start or at

    def _limit_w(self, profile: ChargingProfile, at: datetime, tx_start: datetime | None) -> float | None:
        if (profile.valid_from and at < profile.valid_from) or (profile.valid_to and at >= profile.valid_to):
            return None
        offset = (at - self._start(profile, at, tx_start)).total_seconds()
        if offset < 0 or (profile.duration_s is not None and offset >= profile.duration_s):
            return None
        current: SchedulePeriod | None = None
        for period in profile.periods:
            if period.start_s <= offset:
                current = period
        if current is None:
            return None
        if profile.unit is RateUnit.A:
            return current.limit * self.v_nom * (current.phases or DEFAULT_PHASES)
        return current.limit

    def _stack(
        self, candidates: list[ChargingProfile], at: datetime, tx_start: datetime | None
    ) -> float | None:
        for profile in sorted(candidates, key=lambda p: -p.stack_level):
            limit = self._limit_w(profile, at, tx_start)
            if limit is not None:
                return limit
        return None

    def limit_at(
        self, evse_id: int, at: datetime, tx_id: str | None = None, tx_start: datetime | None = None
    ) -> float | None:
        """The composite limit in watts at ``at``, or ``None`` when no profile applies."""
        station_max = self._stack(
            [p for _, p in self.installed if p.purpose is ProfilePurpose.STATION_MAX], at, None
        )
        tx_limit = None
        if tx_id is not None:
            tx_limit = self._stack(
                [p for e, p in self.installed if p.purpose is ProfilePurpose.TX and e == evse_id
                 and p.transaction_id in (None, tx_id)], at, tx_start,
            )  # fmt: skip
        if tx_limit is None:
            for evse in (evse_id, 0):
                tx_limit = self._stack(
                    [p for e, p in self.installed if p.purpose is ProfilePurpose.TX_DEFAULT and e == evse],
                    at,
                    tx_start,
                )
                if tx_limit is not None:
                    break
        limits = [x for x in (station_max, tx_limit) if x is not None]
        return min(limits) if limits else None

    def composite(
        self,
        evse_id: int,
        start: datetime,
        duration_s: int,
        unit: RateUnit,
        default_w: float,
        tx_id: str | None = None,
        tx_start: datetime | None = None,
    ) -> CompositeSchedule:
        """GetCompositeSchedule: the limit over ``[start, start + duration)`` as periods."""
        cuts = {0}
        for _, profile in self.installed:
            base = self._start(profile, start, tx_start)
            offsets = [p.start_s for p in profile.periods]
            if profile.duration_s is not None:
                offsets.append(profile.duration_s)
            for offset in offsets:
                at = int((base - start).total_seconds()) + offset
                if 0 < at < duration_s:
                    cuts.add(at)
        periods: list[SchedulePeriod] = []
        for at in sorted(cuts):
            watts = self.limit_at(evse_id, start + timedelta(seconds=at), tx_id, tx_start)
            watts = default_w if watts is None else watts
            if unit is RateUnit.A:
                limit = round(watts / (self.v_nom * DEFAULT_PHASES), 1)
                period = SchedulePeriod(at, limit, DEFAULT_PHASES)
            else:
                period = SchedulePeriod(at, round(watts, 1))
            if not periods or periods[-1].limit != period.limit:
                periods.append(period)
        return CompositeSchedule(evse_id, start, duration_s, unit, tuple(periods))
