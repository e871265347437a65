"""`make run` loads the demo with `manage.py load_demo`: it must work on a fresh database and
again on a loaded one (the command is run at every start)."""

import pytest
from django.core.management import call_command

from annotation.models import Batch, BatchState, Judgment, Pair

pytestmark = pytest.mark.django_db


def test_load_demo_loads_three_batches_and_a_labelled_one_and_is_idempotent(capsys):
    call_command("load_demo")
    assert Batch.objects.count() == 3 and Pair.objects.count() == 30
    cardiology = Batch.objects.get(name="K-QA demo — Cardiology")
    assert cardiology.state == BatchState.OPEN and Judgment.objects.filter(batch=cardiology).exists()
    assert "admin" in capsys.readouterr().out
    call_command("load_demo")
    assert Batch.objects.count() == 3 and Pair.objects.count() == 30
