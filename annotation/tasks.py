"""Celery entry points of the annotation domain: thin, they take ids and call one service."""

from celery import shared_task

from annotation.events import batch_event_dispatch, batch_event_sender_set


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=3)
def dispatch_batch_event(event_id: int) -> None:
    batch_event_dispatch(event_id=event_id)


# Looked up at send time, so tests and the eager mode see the current task object.
batch_event_sender_set(lambda event_id: dispatch_batch_event.delay(event_id))
