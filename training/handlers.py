"""Subscribers to annotation events: a closed batch starts its training pipeline.

The foundation calls subscribers inside its event-dispatch transaction; ours only queues
`handle_batch_closed` after that transaction commits, so the export and the launch run in their
own task (with their own retries) and a failure there never rolls back the event bookkeeping."""

from django.db import transaction

from annotation.events import batch_closed_subscribe

from .tasks import handle_batch_closed


@batch_closed_subscribe
def on_batch_closed(batch_id: int) -> None:
    transaction.on_commit(lambda: handle_batch_closed.delay(batch_id))
