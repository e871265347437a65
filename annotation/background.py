"""Queuing work for a worker from the services, without importing the task layer above them:
annotation.tasks installs one sender per job when it is imported (AnnotationConfig.ready does),
as annotation.events does for batch events."""

from collections.abc import Callable

from django.db import transaction

_senders: dict[str, Callable[..., None]] = {}


def sender_set(job: str, send: Callable[..., None]) -> None:
    _senders[job] = send


def send(job: str, *args, after_commit: bool = False) -> None:
    """Queue `job` with `args`; after_commit waits for the surrounding transaction (the task
    must see the rows this transaction writes)."""
    sender = _senders.get(job)
    if sender is None:
        raise RuntimeError(f"No sender for background job {job!r}: annotation.tasks must be imported (AnnotationConfig.ready does).")
    if after_commit:
        transaction.on_commit(lambda: sender(*args))
    else:
        sender(*args)
