"""Subscribers to annotation events: a closed batch starts its training pipeline.

One hop: the worker that dispatches the batch_closed outbox row runs the handler itself. The
handler runs in its own savepoint, so a failure there (recorded on the outbox row's `error` by the
dispatcher) never rolls back the event bookkeeping, and the runs it queues leave after commit."""

from annotation.events import batch_closed_subscribe

from .batch_closed import batch_closed_handle


@batch_closed_subscribe
def on_batch_closed(batch_id: int) -> None:
    batch_closed_handle(batch_id=batch_id)
