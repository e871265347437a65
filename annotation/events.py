"""Batch life-cycle events. The outbox row (BatchEvent) is written in the transaction that
changes the state, so each event exists exactly once; after commit a Celery task hands it to
every subscriber. Subscribers register at import time from their app's ready()."""

import logging
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from annotation.models import BatchEvent

logger = logging.getLogger(__name__)

_batch_closed_subscribers: list[Callable[[int], None]] = []
# How an event id reaches a worker. annotation.tasks sets it when it is imported (the app's
# ready() imports it), so this module never imports the task layer above it.
_event_sender: Callable[[int], None] | None = None


def batch_event_sender_set(send: Callable[[int], None]) -> None:
    """Install the function that queues dispatch of one event id (annotation.tasks does)."""
    global _event_sender
    _event_sender = send


def batch_closed_subscribe(fn: Callable[[int], None]) -> Callable[[int], None]:
    """Register fn(batch_id), called once per closed batch, in a worker, after commit."""
    if fn not in _batch_closed_subscribers:
        _batch_closed_subscribers.append(fn)
    return fn


def batch_event_emit(*, event: BatchEvent) -> None:
    """Queue dispatch of a freshly written event once the surrounding transaction commits."""
    send = _event_sender
    if send is None:
        raise RuntimeError("No batch-event sender installed: annotation.tasks must be imported (AnnotationConfig.ready does).")
    transaction.on_commit(lambda: send(event.pk))


def batch_event_dispatch(*, event_id: int) -> None:
    """Run the subscribers of one event, at most once: the row lock makes a retried or
    duplicated task see handled_at and return."""
    with transaction.atomic():
        event = BatchEvent.objects.select_for_update().get(pk=event_id)
        if event.handled_at is not None:
            return
        errors = []
        for fn in list(_batch_closed_subscribers) if event.kind == BatchEvent.Kind.BATCH_CLOSED else []:
            try:
                fn(event.batch_id)
            except Exception as exc:  # one subscriber's failure must not hide the others
                logger.exception("batch_event.subscriber_failed", extra={"event_id": event_id})
                errors.append(f"{getattr(fn, '__qualname__', fn)}: {exc}")
        event.handled_at = timezone.now()
        event.error = "\n".join(errors)
        event.save(update_fields=["handled_at", "error"])
