"""Celery entry points of the annotation domain: thin, they take ids and call one service."""

import os
from datetime import timedelta

from celery import shared_task

from annotation import background
from annotation.events import batch_event_dispatch, batch_event_sender_set, batch_events_resend
from config.celery_app import app

# How often beat looks for events the broker never took, and how long a sent event may stay
# unhandled before it is sent again (longer than a busy worker takes to reach it).
RESEND_EVERY_SECONDS = float(os.environ.get("CLINPREF_EVENT_RESEND_EVERY", 30))
RESEND_SENT_BEFORE = timedelta(seconds=float(os.environ.get("CLINPREF_EVENT_RESEND_AFTER", 15 * 60)))


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=3)
def dispatch_batch_event(event_id: int) -> None:
    batch_event_dispatch(event_id=event_id)


@shared_task
def resend_batch_events() -> list[int]:
    return batch_events_resend(sent_before=RESEND_SENT_BEFORE)


# A close must answer at once even when the broker is down: one quick retry, then the outbox row
# records the failure and the periodic re-send takes over.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}

# Looked up at send time, so tests and the eager mode see the current task object.
batch_event_sender_set(lambda event_id: dispatch_batch_event.apply_async(args=[event_id], retry_policy=PUBLISH_RETRY_POLICY))


@app.on_after_finalize.connect
def _schedule_resend(sender, **kwargs) -> None:
    # Run by `celery beat`; kept here so the schedule ships with the task it runs.
    sender.add_periodic_task(timedelta(seconds=RESEND_EVERY_SECONDS), resend_batch_events.s(), name="annotation.resend_batch_events")


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=60 * 60, soft_time_limit=55 * 60)
def import_job_run(job_id: int) -> None:
    """A big pairs import, away from the web process (annotation.labeling.importing)."""
    from annotation.labeling.importing import import_job_run as run

    run(job_id=job_id)


@shared_task
def reap_stale_imports() -> list[int]:
    from annotation.labeling.importing import import_jobs_reap_stale

    return import_jobs_reap_stale()


@app.on_after_finalize.connect
def _schedule_import_reaper(sender, **kwargs) -> None:
    sender.add_periodic_task(timedelta(minutes=1), reap_stale_imports.s(), name="annotation.reap_stale_imports")


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
