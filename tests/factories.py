"""Factories for tests. `judged_batch` builds a batch whose pairs already carry judgments,
for tests of agreement, export and training that don't care how labels were collected."""

import hashlib
import itertools
import random
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from annotation import models as m
from annotation.labeling import hotsql
from annotation.labeling.services import batch_counters_recount

User = get_user_model()


class SpecialtyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Specialty
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Specialty {n}")
    slug = factory.LazyAttribute(lambda o: o.name.lower().replace(" ", "-"))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"rater{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-9")

    @factory.post_generation
    def profile(obj, create, extracted, **kwargs):
        if not create:
            return
        role = kwargs.get("role", m.Role.PHYSICIAN)
        specialty = kwargs.get("specialty") or SpecialtyFactory(name="Cardiology", slug="cardiology")
        m.Profile.objects.update_or_create(user=obj, defaults={"role": role, "specialty": specialty})
        if role == m.Role.ADMIN:
            obj.is_staff = True
        obj.save()


def physician(username: str | None = None, specialty: m.Specialty | None = None) -> User:
    kwargs = {"profile__specialty": specialty} if specialty else {}
    if username:
        kwargs["username"] = username
    return UserFactory(**kwargs)


def admin(username: str = "admin") -> User:
    return UserFactory(username=username, profile__role=m.Role.ADMIN)


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = m.Batch

    name = factory.Sequence(lambda n: f"Batch {n}")
    specialty = factory.LazyFunction(lambda: SpecialtyFactory(name="Cardiology", slug="cardiology"))
    raters_per_pair = 3
    # Tests build small batches; the gate's minimum is tested on its own (test_gate_rule.py).
    gate_min_pairs = 1


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_pair(batch: m.Batch, prompt_text: str, a_text: str, b_text: str, gold: int | None = None) -> m.Pair:
    prompt = m.Prompt.objects.create(text=prompt_text, text_sha256=_sha(prompt_text))
    a = m.Completion.objects.create(prompt=prompt, text=a_text, model_name="model-a")
    b = m.Completion.objects.create(prompt=prompt, text=b_text, model_name="model-b")
    fingerprint = _sha("\x00".join([prompt_text, *sorted([a_text, b_text])]))
    pair = m.Pair.objects.create(
        batch=batch, prompt=prompt, completion_a=a, completion_b=b, fingerprint=fingerprint,
        gold_preference=gold, open_slots=batch.raters_per_pair,
    )
    # The batch's counters, as the importer keeps them.
    hotsql.batch_pairs_added(batch_id=batch.pk, regular=int(gold is None), calibration=int(gold is not None))
    return pair


def make_pairs(batch: m.Batch, n: int) -> list[m.Pair]:
    return [
        make_pair(batch, f"Question {i}: what should I do about symptom {i}?", f"Careful answer {i}.", f"Vague answer {i}.")
        for i in range(n)
    ]


def add_judgment(pair: m.Pair, rater, preference: int, *, a_shown_first: bool = True, **fields) -> m.Judgment:
    """Record a submitted judgment directly (bypassing the lease), keeping the pair's counters right."""
    now = timezone.now()
    assignment, _ = m.Assignment.objects.update_or_create(
        pair=pair, rater=rater,
        defaults=dict(batch=pair.batch, a_shown_first=a_shown_first, status=m.AssignmentStatus.SUBMITTED,
                      leased_at=now, expires_at=now + timedelta(minutes=15), finished_at=now,
                      is_calibration=pair.is_calibration),
    )
    judgment = m.Judgment.objects.create(
        assignment=assignment, pair=pair, batch=pair.batch, rater=rater, preference=preference,
        a_shown_first=a_shown_first, idempotency_key=f"factory-{pair.pk}-{rater.pk}",
        time_spent_ms=fields.pop("time_spent_ms", 30_000), **fields,
    )
    m.Pair.objects.filter(pk=pair.pk).update(
        judgments_count=m.Judgment.objects.filter(pair=pair, is_current=True).count(),
        open_slots=max(pair.batch.raters_per_pair - m.Assignment.objects.filter(pair=pair).count(), 0),
    )
    batch_counters_recount(batch_ids=[pair.batch_id], rater_ids=[rater.pk])
    hotsql.batch_data_changed(batch_id=pair.batch_id)  # as judgment_submit does
    return judgment


def judged_batch(*, n_pairs: int = 10, n_raters: int = 3, seed: int = 0, state: str = m.BatchState.CLOSED,
                 agreement: float = 0.8, name: str | None = None) -> tuple[m.Batch, list[m.Pair], list]:
    """A batch whose every pair is judged by every rater. With probability `agreement` a rater
    gives the pair's 'true' label, otherwise a random one, so agreement is high but imperfect."""
    rng = random.Random(seed)
    specialty = SpecialtyFactory(name="Cardiology", slug="cardiology")
    batch = BatchFactory(name=name or f"judged-{seed}-{n_pairs}", specialty=specialty, raters_per_pair=n_raters, state=state)
    raters = [physician(f"doc{seed}_{i}", specialty) for i in range(n_raters)]
    pairs = make_pairs(batch, n_pairs)
    labels = [-2, -1, 0, 1, 2]
    for pair, shown_first in zip(pairs, itertools.cycle([True, False])):
        truth = rng.choice([-2, -1, -1, 1, 1, 2, 0])
        for rater in raters:
            pref = truth if rng.random() < agreement else rng.choice(labels)
            add_judgment(pair, rater, pref, a_shown_first=shown_first)
    return batch, pairs, raters
