"""Batch life-cycle events. The outbox row (BatchEvent) is written in the transaction that
changes the state, so each event exists exactly once; after commit a Celery task hands it to
every subscriber. Subscribers register at import time from their app's ready().

The broker may be down when a batch closes: the close still commits (the outbox row is the
promise), the row records that the hand-off failed, and batch_events_resend - run periodically by
celery beat - hands every unhandled event over again once the broker is back. Dispatch is
idempotent under the row lock, so an event sent twice still runs its subscribers once."""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnreachable

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
    if _event_sender is None:
        raise RuntimeError("No batch-event sender installed: annotation.tasks must be imported (AnnotationConfig.ready does).")
    transaction.on_commit(lambda: batch_event_send(event_id=event.pk))


def batch_event_send(*, event_id: int) -> bool:
    """Hand one event to the broker and record the outcome on its row. A broker that cannot be
    reached is not an error of the request that closed the batch: the row keeps send_error and
    the periodic resend delivers it later. Returns whether the broker took it."""
    try:
        _event_sender(event_id)
    except (BrokerUnreachable, ConnectionError, OSError) as exc:
        logger.warning("batch_event.send_failed", extra={"event_id": event_id, "error": str(exc)})
        BatchEvent.objects.filter(pk=event_id).update(send_error=f"{type(exc).__name__}: {exc}"[:2000])
        return False
    BatchEvent.objects.filter(pk=event_id).update(sent_at=timezone.now(), send_error="")
    return True


def batch_events_resend(*, sent_before: timedelta) -> list[int]:
    """Hand over again every unhandled event that never reached the broker, or that reached it
    longer than `sent_before` ago without being handled (a broker restarted without persistence
    loses its messages; a worker killed with its message unacknowledged holds it until the
    visibility timeout). Returns the ids handed over now."""
    stale = timezone.now() - sent_before
    pending = BatchEvent.objects.filter(handled_at__isnull=True).filter(
        Q(sent_at__isnull=True) | Q(sent_at__lt=stale)).order_by("pk").values_list("pk", flat=True)
    return [event_id for event_id in pending if batch_event_send(event_id=event_id)]


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
