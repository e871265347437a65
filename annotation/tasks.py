from celery import shared_task

from annotation.events import batch_event_dispatch


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=3)
def dispatch_batch_event(event_id: int) -> None:
    batch_event_dispatch(event_id=event_id)
