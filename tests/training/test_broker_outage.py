"""Closing a batch while the broker is down: the close is answered and recorded, the batch says
training starts when the broker is back, and the periodic re-send starts it then - once."""

from datetime import timedelta

import pytest
from kombu.exceptions import OperationalError as BrokerUnreachable

from annotation import events
from annotation.models import BatchEvent, ExportSnapshot
from tests import factories
from tests.conftest import client_for
from tests.training.conftest import gate_open_batch
from training import services
from training.models import TrainingPipeline

pytestmark = pytest.mark.django_db


def test_a_close_during_a_broker_outage_starts_training_once_the_broker_is_back(
        fast_training, monkeypatch, django_capture_on_commit_callbacks):
    queued_runs = []
    monkeypatch.setattr(services, "_dispatch", lambda run: queued_runs.append(run.pk))  # no training here
    working_sender = events._event_sender

    def broker_down(event_id):
        raise BrokerUnreachable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(events, "_event_sender", broker_down)
    batch = gate_open_batch(n_pairs=6, pipeline="reward_model")
    admin = client_for(factories.admin("lead"))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/api/batches/{batch.pk}/close/", {}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "closed"
    # (Outside a test transaction the hand-off runs before the response; here it runs just after.)
    outcome = admin.get(f"/api/batches/{batch.pk}/").json()["close_outcome"]
    assert outcome["state"] == "waiting_for_broker" and "when it is back" in outcome["message"]
    event = BatchEvent.objects.get(batch=batch)
    assert event.sent_at is None and "Connection refused" in event.send_error
    assert not TrainingPipeline.objects.exists()

    # Still down: the sweep tries, fails, and leaves the event for the next sweep.
    assert events.batch_events_resend(sent_before=timedelta(minutes=15)) == []
    # The broker is back: the next sweep hands the event over, and the pipeline starts.
    monkeypatch.setattr(events, "_event_sender", working_sender)
    with django_capture_on_commit_callbacks(execute=True):
        assert events.batch_events_resend(sent_before=timedelta(minutes=15)) == [event.pk]
    event.refresh_from_db()
    assert event.handled_at is not None and event.error == "" and event.send_error == ""
    assert TrainingPipeline.objects.filter(trigger_key=f"batch_closed:{batch.pk}").count() == 1
    assert ExportSnapshot.objects.filter(batch=batch).count() == 1 and len(queued_runs) == 1
    assert admin.get(f"/api/batches/{batch.pk}/").json()["close_outcome"]["state"] == "started"

    # Later sweeps and a duplicated message start nothing more.
    assert events.batch_events_resend(sent_before=timedelta(0)) == []
    events.batch_event_dispatch(event_id=event.pk)
    assert TrainingPipeline.objects.count() == 1 and ExportSnapshot.objects.count() == 1 and len(queued_runs) == 1


def test_a_sent_event_left_unhandled_too_long_is_sent_again(fast_training, monkeypatch):
    """A broker restarted without persistence, or a worker killed holding the message: the row
    says sent but never handled, and the sweep sends it again after `sent_before`."""
    sent = []
    monkeypatch.setattr(events, "_event_sender", sent.append)
    batch = gate_open_batch(n_pairs=4)
    event = BatchEvent.objects.create(batch=batch, kind=BatchEvent.Kind.BATCH_CLOSED)
    assert events.batch_events_resend(sent_before=timedelta(minutes=15)) == [event.pk]
    assert events.batch_events_resend(sent_before=timedelta(minutes=15)) == []  # just sent
    assert events.batch_events_resend(sent_before=timedelta(0)) == [event.pk]
    assert sent == [event.pk, event.pk]
