"""Celery entry points: take an id, call one service, let the service record the outcome.

train_run goes to the `gpu` queue (start GPU workers with `-Q gpu`); everything else to the
default queue. A training run can take hours: the task is acknowledged only when it ends
(acks_late), handed back if its worker dies (reject_on_worker_lost), and has its own time limits
instead of the 15-minute default. The broker's visibility timeout (CELERY_VISIBILITY_TIMEOUT,
48 h) must stay above TRAINING_TIME_LIMIT or Redis would hand a live run to a second worker."""

import os
from datetime import timedelta

from celery import shared_task

from config.celery_app import app

from . import dispatch, services, worker
from .rounds import services as round_services
from .rounds import worker as round_worker
from .conf import stale_after

TRAINING_TIME_LIMIT = int(os.environ.get("CLINPREF_TRAINING_TIME_LIMIT", 24 * 3600))
# The soft limit raises inside the run, which then records itself as failed with the reason.
TRAINING_SOFT_TIME_LIMIT = max(TRAINING_TIME_LIMIT - 300, 60)
REAP_EVERY_SECONDS = float(os.environ.get("CLINPREF_TRAINING_REAP_EVERY", 300))


@shared_task(
    bind=True,
    queue="gpu",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=TRAINING_TIME_LIMIT,
    soft_time_limit=TRAINING_SOFT_TIME_LIMIT,
)
def train_run(self, run_id: int) -> str | None:
    run = worker.run_execute(run_id=run_id, task_id=self.request.id or "")
    return run.status if run is not None else None


@shared_task(
    bind=True,
    queue="gpu",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=TRAINING_TIME_LIMIT,
    soft_time_limit=TRAINING_SOFT_TIME_LIMIT,
)
def round_generate(self, round_id: int) -> str | None:
    """Sample a round's responses and build its draft batch. Like train_run: acknowledged at the end,
    handed to another worker if this one dies; the responses already stored are kept."""
    rnd = round_worker.round_execute(round_id=round_id, task_id=self.request.id or "")
    return rnd.status if rnd is not None else None


@shared_task
def reap_stale_runs() -> list[int]:
    round_services.rounds_reap_stale()
    return services.runs_reap_stale(older_than=stale_after())


# Services queue runs through training.dispatch; this is the one place that knows the task.
dispatch.run_sender_set(lambda run_id, task_id: train_run.apply_async(args=[run_id], task_id=task_id, queue="gpu"))
dispatch.round_sender_set(lambda round_id, task_id: round_generate.apply_async(args=[round_id], task_id=task_id, queue="gpu"))


@app.on_after_finalize.connect
def _schedule_reaper(sender, **kwargs) -> None:
    # Run by `celery beat`; kept here so the schedule ships with the task it runs.
    sender.add_periodic_task(timedelta(seconds=REAP_EVERY_SECONDS), reap_stale_runs.s(), name="training.reap_stale_runs")
