"""Tenant scope: every registry query takes one, so isolation is structural, not repeated checks."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, true


@dataclass(frozen=True, slots=True)
class TenantScope:
    """What a caller may see. ``tenant_id=None`` is the utility's view of every tenant;
    an aggregator's scope names its own tenant and sees nothing else."""

    tenant_id: str | None

    @classmethod
    def utility(cls) -> TenantScope:
        return cls(None)

    def where(self, table: Table) -> ColumnElement[bool]:
        """Filter for ``table`` (which must have a ``tenant_id`` column)."""
        if self.tenant_id is None:
            return true()
        return table.c.tenant_id == self.tenant_id

    def allows(self, tenant_id: str | None) -> bool:
        return self.tenant_id is None or self.tenant_id == tenant_id
