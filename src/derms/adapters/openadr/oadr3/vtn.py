"""OpenADR 3.0.1 VTN: objects, object-level authorisation and subscription notifications.

Authorisation per object (3.0.1 User Guide, "Security" and the scopes of ``openadr3.yaml``):

* BL clients read and write everything.
* A VEN client reads programs and events only when they target it and only once its VEN
  object exists: an unregistered VEN sees nothing. An object without targets addresses every
  VEN; otherwise every ``VEN_NAME``, ``GROUP`` and ``RESOURCE_NAME`` valuesMap it carries must
  name the VEN, one of its groups or one of its resources (filters are additive, as the
  Definition's query rules say), and an object whose targets are all of other types (which
  the VTN cannot evaluate) is shown to no VEN.
* A VEN client creates and reads its own VEN object, resources, reports (``clientName`` is its
  venName) and subscriptions; it never sees another VEN's.

Every create, update and delete notifies the subscriptions whose ``objectOperations`` ask for
that object type and operation, whose program matches, and whose owner may read the object;
:mod:`derms.adapters.openadr.oadr3.webhooks` delivers the notifications.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection

from derms.adapters.openadr.oadr3.auth import Principal
from derms.adapters.openadr.oadr3.models import (
    MODELS,
    Event,
    Notification,
    Program,
    Report,
    Resource,
    Stored,
    Subscription,
    ValuesMap,
    Ven,
)
from derms.adapters.openadr.oadr3.store import Vtn3Store
from derms.adapters.openadr.oadr3.webhooks import RetryPolicy, Webhook, WebhookDelivery
from derms.core.clock import Clock

Operation = Literal["CREATE", "UPDATE", "DELETE"]
_HTTP_OF = {"CREATE": "POST", "UPDATE": "PUT", "DELETE": "DELETE"}
_SPELLINGS = {"CREATE": {"CREATE", "POST"}, "UPDATE": {"UPDATE", "PUT"}, "DELETE": {"DELETE"}}

Also = Callable[[Connection, Stored], None]
"""Further rows written in the transaction that stores an object (given the stored object)."""


class Forbidden(Exception):
    """The principal may not do this (HTTP 403 problem)."""


class Missing(Exception):
    """No such object visible to the principal (HTTP 404 problem)."""


class Conflict(Exception):
    """A name that must be unique is taken (HTTP 409 problem)."""


@dataclass(frozen=True, slots=True)
class Owned:
    obj: Stored
    owner: str
    """client_id of the creator."""


class Vtn3:
    def __init__(
        self,
        clock: Clock,
        principal_of: Callable[[str], Principal | None],
        *,
        on_change: Callable[[str, Operation, Stored], None] | None = None,
        store: Vtn3Store | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.clock = clock
        self.principal_of = principal_of
        self.on_change = on_change
        self.store = store
        self.objects: dict[str, dict[str, Owned]] = {
            k: {} for k in ("PROGRAM", "EVENT", "REPORT", "SUBSCRIPTION", "VEN", "RESOURCE")
        }
        if store is not None:
            for row in store.load():
                self.objects[row.kind][row.id] = Owned(MODELS[row.kind].model_validate(row.data), row.owner)
        self.webhooks = WebhookDelivery(clock, retry)

    async def start(self) -> None:
        await self.webhooks.start()

    async def stop(self) -> None:
        await self.webhooks.stop()

    # ------------------------------------------------------------------ visibility

    def ven_of(self, principal: Principal) -> Ven | None:
        for owned in self.objects["VEN"].values():
            ven = owned.obj
            assert isinstance(ven, Ven)
            if ven.ven_name == principal.ven_name:
                return ven
        return None

    def _resource_names(self, ven: Ven) -> set[str]:
        return {
            o.obj.resource_name
            for o in self.objects["RESOURCE"].values()
            if isinstance(o.obj, Resource) and o.obj.ven_id == ven.id
        }

    def targets_ven(self, targets: list[ValuesMap] | None, ven: Ven) -> bool:
        if not targets:
            return True
        held = {
            "VEN_NAME": {ven.ven_name},
            "GROUP": {str(v) for t in ven.targets or [] if t.type == "GROUP" for v in t.values},
            "RESOURCE_NAME": self._resource_names(ven),
        }
        known = [t for t in targets if t.type in held]
        return bool(known) and all(held[t.type] & {str(v) for v in t.values} for t in known)

    def can_read(self, principal: Principal, kind: str, owned: Owned) -> bool:
        if principal.is_bl:
            return True
        ven = self.ven_of(principal)
        if ven is None:
            return False
        obj = owned.obj
        if isinstance(obj, Program | Event):
            return self.targets_ven(obj.targets, ven)
        if isinstance(obj, Ven):
            return obj.id == ven.id
        if isinstance(obj, Resource):
            return obj.ven_id == ven.id
        return owned.owner == principal.client_id

    # ------------------------------------------------------------------ CRUD

    def search(
        self, principal: Principal, kind: str, filters: Callable[[Stored], bool], skip: int, limit: int
    ) -> list[Stored]:
        found = [
            o.obj for o in self.objects[kind].values() if self.can_read(principal, kind, o) and filters(o.obj)
        ]
        return found[skip : skip + limit]

    def get(self, principal: Principal, kind: str, object_id: str) -> Stored:
        owned = self.objects[kind].get(object_id)
        if owned is None or not self.can_read(principal, kind, owned):
            raise Missing(f"{kind.lower()} {object_id} not found")
        return owned.obj

    def create(self, principal: Principal, kind: str, obj: Stored, *, also: Also | None = None) -> Stored:
        """Store a new object; ``also`` writes further rows in the same transaction."""
        self._check_write(principal, kind, obj, None)
        now = self.clock.now()
        stored = obj.model_copy(
            update={"id": uuid.uuid4().hex, "created_date_time": now, "modification_date_time": now}
        )
        self._put(kind, Owned(stored, principal.client_id), also)
        self._changed(kind, "CREATE", stored)
        return stored

    def update(self, principal: Principal, kind: str, object_id: str, obj: Stored) -> Stored:
        current = self.objects[kind].get(object_id)
        if current is None or not self.can_read(principal, kind, current):
            raise Missing(f"{kind.lower()} {object_id} not found")
        self._check_write(principal, kind, obj, current)
        stored = obj.model_copy(
            update={
                "id": object_id,
                "created_date_time": current.obj.created_date_time,
                "modification_date_time": self.clock.now(),
            }
        )
        self._put(kind, Owned(stored, current.owner))
        self._changed(kind, "UPDATE", stored)
        return stored

    def delete(self, principal: Principal, kind: str, object_id: str) -> Stored:
        current = self.objects[kind].get(object_id)
        if current is None or not self.can_read(principal, kind, current):
            raise Missing(f"{kind.lower()} {object_id} not found")
        self._check_write(principal, kind, current.obj, current)
        if self.store is not None:
            self.store.drop(kind, object_id)
        del self.objects[kind][object_id]
        if kind == "SUBSCRIPTION":
            self.webhooks.forget(object_id)
        self._changed(kind, "DELETE", current.obj)
        return current.obj

    def _put(self, kind: str, owned: Owned, also: Also | None = None) -> None:
        """Write through first: if the database refuses, memory is unchanged."""
        object_id = owned.obj.id or ""
        if self.store is not None:
            write = None if also is None else lambda conn: also(conn, owned.obj)
            self.store.put(kind, object_id, owned.owner, owned.obj.wire(), write)
        self.objects[kind][object_id] = owned

    def _check_write(self, principal: Principal, kind: str, obj: Stored, current: Owned | None) -> None:
        scope = {
            "PROGRAM": "write_programs",
            "EVENT": "write_events",
            "REPORT": "write_reports",
            "SUBSCRIPTION": "write_subscriptions",
            "VEN": "write_vens",
            "RESOURCE": "write_vens",
        }[kind]
        if scope not in principal.scopes:
            raise Forbidden(f"scope {scope} required")
        if isinstance(obj, Event | Report | Subscription) and obj.program_id not in self.objects["PROGRAM"]:
            raise Missing(f"program {obj.program_id} not found")
        if isinstance(obj, Report) and obj.event_id not in self.objects["EVENT"]:
            raise Missing(f"event {obj.event_id} not found")
        if (
            isinstance(obj, Program)
            and current is None
            and any(
                isinstance(o.obj, Program) and o.obj.program_name == obj.program_name
                for o in self.objects["PROGRAM"].values()
            )
        ):
            raise Conflict(f"program {obj.program_name!r} exists")
        if isinstance(obj, Ven) and any(
            isinstance(o.obj, Ven) and o.obj.ven_name == obj.ven_name and o is not current
            for o in self.objects["VEN"].values()
        ):
            raise Conflict(f"VEN {obj.ven_name!r} exists")
        if principal.is_bl:
            return
        if isinstance(obj, Ven) and obj.ven_name != principal.ven_name:
            raise Forbidden("a VEN may only write its own VEN object")
        if isinstance(obj, Report | Subscription) and obj.client_name != principal.ven_name:
            raise Forbidden("clientName must be the VEN's own venName")
        if isinstance(obj, Report):
            ven = self.ven_of(principal)
            event = self.objects["EVENT"][obj.event_id].obj
            if ven is None or not isinstance(event, Event) or not self.targets_ven(event.targets, ven):
                raise Forbidden("report for an event not addressed to this VEN")
        if isinstance(obj, Resource):
            ven = self.ven_of(principal)
            if ven is None or obj.ven_id != ven.id:
                raise Forbidden("a VEN may only write its own resources")

    # ------------------------------------------------------------------ notifications

    def _changed(self, kind: str, operation: Operation, obj: Stored) -> None:
        if self.on_change is not None:
            self.on_change(kind, operation, obj)
        program_id = obj.id if isinstance(obj, Program) else getattr(obj, "program_id", None)
        note = Notification(
            object_type=kind,  # type: ignore[arg-type]
            operation=_HTTP_OF[operation],  # type: ignore[arg-type]
            object=obj.wire(),
            targets=getattr(obj, "targets", None),
        ).wire()
        for owned in list(self.objects["SUBSCRIPTION"].values()):
            sub = owned.obj
            assert isinstance(sub, Subscription)
            if program_id is not None and sub.program_id != program_id:
                continue
            principal = self.principal_of(owned.owner)
            if principal is None or not self.can_read(principal, kind, Owned(obj, "")):
                continue
            for op in sub.object_operations:
                if kind in op.objects and _SPELLINGS[operation] & set(op.operations):
                    self.webhooks.enqueue(Webhook(sub.id or "", op.callback_url, op.bearer_token, note))
