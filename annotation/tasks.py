"""Celery entry points of the annotation domain: thin, they take ids and call one service."""

from celery import shared_task

from annotation import background
from annotation.events import batch_event_dispatch, batch_event_sender_set


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=3)
def dispatch_batch_event(event_id: int) -> None:
    batch_event_dispatch(event_id=event_id)


# Looked up at send time, so tests and the eager mode see the current task object.
batch_event_sender_set(lambda event_id: dispatch_batch_event.delay(event_id))


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=60 * 60, soft_time_limit=55 * 60)
def import_job_run(job_id: int) -> None:
    """A big pairs import, away from the web process (annotation.labeling.importing)."""
    from annotation.labeling.importing import import_job_run as run

    run(job_id=job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=30 * 60, soft_time_limit=28 * 60)
def agreement_report_compute(batch_id: int, level: str) -> None:
    """A large batch's agreement report, computed once and cached (annotation.agreement.services)."""
    from annotation.agreement.services import agreement_report_for_batch
    from annotation.models import Batch

    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is not None:
        agreement_report_for_batch(batch=batch, level=level)


background.sender_set("labeling.import_job_run", lambda job_id: import_job_run.delay(job_id))
background.sender_set("agreement.report_compute", lambda batch_id, level: agreement_report_compute.delay(batch_id, level))
