"""How a queued run reaches a worker. training.tasks installs the sender when it is imported
(TrainingConfig.ready imports it), so services queue runs without importing the task layer."""

from __future__ import annotations

from collections.abc import Callable

_run_sender: Callable[[int, str], None] | None = None


def run_sender_set(send: Callable[[int, str], None]) -> None:
    """Install send(run_id, task_id), which queues one run's Celery task (training.tasks does)."""
    global _run_sender
    _run_sender = send


def run_enqueue(*, run_id: int, task_id: str) -> None:
    """Queue the run now; callers wrap this in transaction.on_commit."""
    if _run_sender is None:
        raise RuntimeError("No run sender installed: training.tasks must be imported (TrainingConfig.ready does).")
    _run_sender(run_id, task_id)


_round_sender: Callable[[int, str], None] | None = None


def round_sender_set(send: Callable[[int, str], None]) -> None:
    """Install send(round_id, task_id), which queues a round's generation task (training.tasks does)."""
    global _round_sender
    _round_sender = send


def round_enqueue(*, round_id: int, task_id: str) -> None:
    if _round_sender is None:
        raise RuntimeError("No round sender installed: training.tasks must be imported (TrainingConfig.ready does).")
    _round_sender(round_id, task_id)
