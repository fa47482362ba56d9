"""Direct device commands (operator overrides) through the bridge to the DER's adapter."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta

from fastapi import APIRouter, Request, status

from derms.api.audit import audit
from derms.api.auth import Operator
from derms.api.schemas import CommandIn, CommandOut
from derms.core.controls import control_from_dict, control_to_dict
from derms.core.dispatch import Reason
from derms.core.errors import LimitViolation, ValidationFailed
from derms.runtime import Runtime
from derms.store import registry as reg

router = APIRouter(prefix="/api/v1", tags=["commands"])


@router.post("/ders/{der_id}/commands", response_model=CommandOut, status_code=status.HTTP_202_ACCEPTED)
async def send_command(request: Request, der_id: str, body: CommandIn, principal: Operator) -> CommandOut:
    """Send one control to one DER. Refused (422) outside the device's limits; the attempt and
    its outcome are in the audit log either way."""
    rt: Runtime = request.app.state.runtime
    try:
        control = control_from_dict(body.control)
    except ValueError as exc:
        raise ValidationFailed([str(exc)]) from exc
    with rt.engine.connect() as conn:
        der = reg.get_der(conn, der_id, scope=principal.scope)
    detail = {"control": control_to_dict(control), "duration_s": body.duration_s, "reason": body.reason}
    try:
        command = await rt.send_control(
            der,
            control,
            start=body.start,
            duration=timedelta(seconds=body.duration_s),
            reason=Reason(None, "operator", body.reason),
        )
    except LimitViolation as exc:
        with rt.engine.begin() as conn:
            audit(
                conn, rt.clock, principal, "command.refused", f"der/{der_id}", {**detail, "error": exc.reason}
            )
        raise
    with rt.engine.begin() as conn:
        audit(
            conn,
            rt.clock,
            principal,
            "command.send",
            f"der/{der_id}",
            {**detail, "command_id": command.command_id},
        )
    return CommandOut(
        command_id=command.command_id,
        der_id=der_id,
        protocol=command.protocol,
        start=command.start,
        end=command.end,
        losses=[asdict(loss) for loss in command.losses],
    )
