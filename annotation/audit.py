"""The audit trail: every write of a judgment, batch state or training run records one event."""

from django.contrib.auth.models import AbstractBaseUser

from annotation.models import AuditEvent, Batch


def audit_record(
    *,
    actor: AbstractBaseUser | None,
    action: str,
    obj,
    batch: Batch | int | None = None,
    data: dict | None = None,
) -> AuditEvent:
    """Append one audit event. Call inside the transaction that makes the change, so the
    change and its record commit or roll back together."""
    batch_id = batch.pk if isinstance(batch, Batch) else batch
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        object_type=obj._meta.model_name,
        object_id=str(obj.pk),
        batch_id=batch_id,
        data=data or {},
    )
