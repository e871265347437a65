"""The labeling API (batches, pairs, the judging hot path, raters, audit): one thin class per operation. Input is validated by a nested
InputSerializer, the work is one service or selector call, output is an OutputSerializer."""

import json

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import paginated, paginated_schema, query_int
from annotation.labeling import selectors, services
from annotation.labeling.assignment import (
    CANONICAL_LABELS,
    DISPLAY_PREFERENCES,
    JudgmentInput,
    assignment_skip,
    judgment_submit,
    pair_lease_next,
    preference_to_display,
)
from annotation.labeling.importing import import_inline_max_lines, import_job_create, pairs_import
from annotation.models import FLAG_CHOICES, BatchState, GateRule, HarmSeverity, PhiPolicy, RationalePolicy, Role
from annotation.parsers import BoundedJSONParser, NDJSONParser
from annotation.permissions import IsActiveUser, IsAdminRole, IsPhysician


class CloseOutcome(serializers.Serializer):
    state = serializers.ChoiceField(choices=["waiting_for_broker", "queued", "gate_blocked", "started", "failed"])
    message = serializers.CharField()
    gate_reasons = serializers.ListField(child=serializers.CharField())
    handled_at = serializers.DateTimeField(allow_null=True)


class BatchOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    specialty = serializers.CharField(source="specialty.name")
    description = serializers.CharField()
    state = serializers.CharField()
    raters_per_pair = serializers.IntegerField()
    rubric = serializers.JSONField()
    rationale_policy = serializers.CharField()
    calibration_rate = serializers.FloatField()
    lease_seconds = serializers.IntegerField()
    min_alpha = serializers.FloatField()
    min_rater_kappa = serializers.FloatField()
    gate_min_pairs = serializers.IntegerField()
    gate_rule = serializers.CharField()
    training_pipeline = serializers.CharField()
    created_at = serializers.DateTimeField()
    opened_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    exported_at = serializers.DateTimeField(allow_null=True)
    pairs_short_at_close = serializers.IntegerField(allow_null=True)
    phi_policy = serializers.CharField()
    allow_self_adjudication = serializers.BooleanField()
    progress = serializers.SerializerMethodField()
    close_outcome = serializers.SerializerMethodField(help_text="What closing has led to so far; null until the batch is closed.")

    def get_progress(self, batch) -> dict:
        return selectors.batch_progress(batch)

    @extend_schema_field(CloseOutcome(allow_null=True))
    def get_close_outcome(self, batch) -> dict | None:
        return selectors.batch_close_outcome(batch=batch) if batch.state in (BatchState.CLOSED, BatchState.EXPORTED) else None


def batch_response(batch_id: int, *, status_code=status.HTTP_200_OK) -> Response:
    return Response(BatchOutput(selectors.batch_with_progress(batch_id=batch_id)).data, status=status_code)


class BatchListCreateApi(APIView):
    permission_classes = [IsAdminRole]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        specialty = serializers.CharField(max_length=100)
        raters_per_pair = serializers.IntegerField(min_value=1, max_value=20, default=3)
        rubric = serializers.ListField(child=serializers.DictField(), required=False, allow_empty=False)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        rationale_policy = serializers.ChoiceField(choices=RationalePolicy.values, default=RationalePolicy.OPTIONAL)
        calibration_rate = serializers.FloatField(min_value=0.0, max_value=1.0, default=0.1)
        lease_seconds = serializers.IntegerField(min_value=60, max_value=24 * 3600, required=False)
        min_alpha = serializers.FloatField(min_value=-1.0, max_value=1.0, required=False)
        min_rater_kappa = serializers.FloatField(min_value=-1.0, max_value=1.0, required=False)
        gate_min_pairs = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
        gate_rule = serializers.ChoiceField(choices=GateRule.values, required=False)

    @extend_schema(responses=BatchOutput(many=True))
    def get(self, request):
        state = request.query_params.get("state")
        batches = selectors.batches_with_progress(states=[state] if state else None)
        return Response(BatchOutput(batches, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: BatchOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        batch = services.batch_create(
            name=v["name"], specialty_name=v["specialty"], raters_per_pair=v["raters_per_pair"], rubric=v.get("rubric"),
            description=v["description"], rationale_policy=v["rationale_policy"], calibration_rate=v["calibration_rate"],
            lease_seconds=v.get("lease_seconds"), created_by=request.user,
            gate={k: v[k] for k in services.GATE_SETTINGS if k in v},
        )
        return batch_response(batch.pk, status_code=status.HTTP_201_CREATED)


class BatchDetailApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(responses=BatchOutput)
    def get(self, request, batch_id: int):
        return batch_response(batch_id)


class BatchPairsImportApi(APIView):
    """Body: JSONL (`application/x-ndjson`) or a JSON list of pair objects. Up to
    IMPORT_INLINE_MAX_LINES lines are imported at once (201); more are queued as an ImportJob
    (202, Location: the job to follow)."""

    permission_classes = [IsAdminRole]
    parser_classes = [NDJSONParser, BoundedJSONParser]

    @extend_schema(request={"application/x-ndjson": {"type": "string", "description": "one pair object per line"},
                            "application/json": {"type": "array", "items": {"type": "object"}}},
                   responses={201: dict, 202: dict, 400: dict})
    def post(self, request, batch_id: int):
        batch = selectors.batch_get(batch_id=batch_id)
        body = request.data
        if isinstance(body, list):
            lines = [json.dumps(item) if not isinstance(item, (str, bytes)) else item for item in body]
        elif isinstance(body, dict) and "lines" in body:
            lines = body["lines"]
        else:
            return Response(
                {"detail": "Send JSONL (Content-Type: application/x-ndjson) or a JSON list of pair objects."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        if len(lines) > import_inline_max_lines():
            encoded = [line.encode("utf-8") if isinstance(line, str) else line for line in lines]
            job = import_job_create(batch=batch, content=b"\n".join(encoded), actor=request.user)
            url = reverse("import-job-detail", args=[job.pk])
            return Response({**ImportJobOutput(job).data, "detail": "Import queued; follow the link for progress."},
                            status=status.HTTP_202_ACCEPTED, headers={"Location": url})
        created = pairs_import(batch=batch, lines=lines, actor=request.user)
        return Response({"created": created}, status=status.HTTP_201_CREATED)


class ImportJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    batch_id = serializers.IntegerField()
    status = serializers.CharField()
    source_bytes = serializers.IntegerField()
    lines_read = serializers.IntegerField()
    pairs_created = serializers.IntegerField()
    detail = serializers.CharField()
    errors = serializers.JSONField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    url = serializers.SerializerMethodField()

    def get_url(self, job) -> str:
        return reverse("import-job-detail", args=[job.pk])


class ImportJobDetailApi(APIView):
    """A background import: queued, running (lines_read so far), done (pairs_created) or failed
    (every bad line with its number in `errors`; nothing was imported)."""

    permission_classes = [IsAdminRole]

    @extend_schema(responses=ImportJobOutput)
    def get(self, request, job_id: int):
        return Response(ImportJobOutput(selectors.import_job_get(job_id=job_id)).data)


class BatchOpenApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(request=None, responses={200: BatchOutput, 409: dict})
    def post(self, request, batch_id: int):
        services.batch_open(batch_id=batch_id, actor=request.user)
        return batch_response(batch_id)


class BatchCloseApi(APIView):
    permission_classes = [IsAdminRole]

    class InputSerializer(serializers.Serializer):
        force = serializers.BooleanField(default=False, help_text="Close although some pairs lack judgments.")
        override_reason = serializers.CharField(
            required=False, allow_blank=True, default="",
            help_text="Written reason to start training although agreement is below the batch's thresholds.",
        )

    @extend_schema(request=InputSerializer, responses={200: BatchOutput, 409: dict})
    def post(self, request, batch_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.batch_close(batch_id=batch_id, actor=request.user, force=data.validated_data["force"],
                             override_reason=data.validated_data["override_reason"].strip())
        return batch_response(batch_id)


class BatchSettingsApi(APIView):
    """Safety settings of a batch; every change is audited with its old and new value."""

    permission_classes = [IsAdminRole]

    class InputSerializer(serializers.Serializer):
        allow_self_adjudication = serializers.BooleanField(
            required=False, help_text="Let an adjudicator decide a pair they rated themselves (off by default).")
        phi_policy = serializers.ChoiceField(
            choices=PhiPolicy.values, required=False,
            help_text="block: refuse an import with likely patient identifiers; review: import and flag the pairs.")

    @extend_schema(request=InputSerializer, responses=BatchOutput)
    def post(self, request, batch_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.batch_settings_update(batch_id=batch_id, actor=request.user, **data.validated_data)
        return batch_response(batch_id)


class PhiFindingOutput(serializers.Serializer):
    field = serializers.CharField()
    kind = serializers.CharField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()


class FlaggedPairOutput(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField()
    prompt = serializers.CharField(source="prompt.text")
    response_a = serializers.CharField(source="completion_a.text")
    response_b = serializers.CharField(source="completion_b.text")
    phi_findings = PhiFindingOutput(many=True)


class BatchPhiReviewApi(APIView):
    """Pairs flagged by the PHI guard (batch phi_policy "review"); the batch opens once none is left."""

    permission_classes = [IsAdminRole]

    class InputSerializer(serializers.Serializer):
        pair_ids = serializers.ListField(child=serializers.IntegerField(min_value=1), allow_empty=False, max_length=10_000)
        note = serializers.CharField(max_length=2000, help_text="Why these pairs carry no patient identifier.")

    @extend_schema(responses=paginated_schema(FlaggedPairOutput))
    def get(self, request, batch_id: int):
        pairs = selectors.pairs_flagged_phi(batch_id=batch_id)
        return paginated(request, self, pairs, FlaggedPairOutput)

    @extend_schema(request=InputSerializer, responses={200: inline_serializer("PhiCleared", {"cleared": serializers.IntegerField()})})
    def post(self, request, batch_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        selectors.batch_get(batch_id=batch_id)
        cleared = services.batch_phi_clear(batch_id=batch_id, actor=request.user, **data.validated_data)
        return Response({"cleared": cleared})


class PairGoldApi(APIView):
    permission_classes = [IsAdminRole]

    class InputSerializer(serializers.Serializer):
        gold_preference = serializers.IntegerField(min_value=-2, max_value=2, help_text="-2 (A much better) .. 2 (B much better).")

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        batch = serializers.IntegerField(source="batch_id")
        gold_preference = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, 409: dict})
    def put(self, request, pair_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        pair = services.pair_gold_set(pair_id=pair_id, gold_preference=data.validated_data["gold_preference"], actor=request.user)
        return Response(self.OutputSerializer(pair).data)


# ---------------------------------------------------------------- physicians: the hot path

def assignment_payload(assignment) -> dict:
    """A pair in the recorded display order, labelled slot 1 / 2 only (never A/B)."""
    pair = assignment.pair
    first, second = (pair.completion_a, pair.completion_b) if assignment.a_shown_first else (pair.completion_b, pair.completion_a)
    batch = assignment.batch
    return {
        "assignment_id": assignment.pk,
        "pair_id": assignment.pair_id,
        "batch": {"id": batch.pk, "name": batch.name},
        "prompt": pair.prompt.text,
        "responses": [{"slot": 1, "text": first.text}, {"slot": 2, "text": second.text}],
        "rubric": batch.rubric,
        "rationale_policy": batch.rationale_policy,
        "lease_expires_at": assignment.expires_at.isoformat(),
    }


class NextPairApi(APIView):
    permission_classes = [IsPhysician]

    @extend_schema(parameters=[
        OpenApiParameter("batch", int, required=False),
        OpenApiParameter("pair", int, required=False,
                         description="Try this pair first (after a 409 lease_expired, to resubmit the same answer)."),
    ], responses={200: dict, 204: None})
    def get(self, request):
        assignment = pair_lease_next(rater=request.user, batch_id=query_int(request, "batch"),
                                     prefer_pair_id=query_int(request, "pair"))
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(assignment_payload(assignment))


class JudgmentOutput(serializers.Serializer):
    """A judgment as its author sees it: display terms of their own assignment, plus canonical."""

    id = serializers.IntegerField()
    assignment_id = serializers.IntegerField()
    pair_id = serializers.IntegerField()
    batch_id = serializers.IntegerField()
    rater = serializers.CharField(source="rater.username")
    revision = serializers.IntegerField()
    preference = serializers.SerializerMethodField()
    preference_canonical = serializers.SerializerMethodField()
    criteria = serializers.JSONField()
    flags = serializers.JSONField()
    a_unsafe = serializers.BooleanField()
    b_unsafe = serializers.BooleanField()
    both_unacceptable = serializers.BooleanField()
    harm_severity = serializers.CharField()
    error_spans = serializers.JSONField()
    rationale = serializers.CharField()
    time_spent_ms = serializers.IntegerField(allow_null=True)
    idempotency_key = serializers.CharField()
    is_current = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    def get_preference(self, j) -> str:
        return preference_to_display(j.preference, a_shown_first=j.a_shown_first)

    def get_preference_canonical(self, j) -> str:
        return CANONICAL_LABELS[j.preference]


class JudgmentSubmitApi(APIView):
    permission_classes = [IsPhysician]

    class InputSerializer(serializers.Serializer):
        preference = serializers.ChoiceField(choices=list(DISPLAY_PREFERENCES))
        idempotency_key = serializers.CharField(max_length=100)
        criteria = serializers.DictField(child=serializers.CharField(allow_blank=True, allow_null=True), required=False)
        flags = serializers.DictField(
            child=serializers.ListField(child=serializers.ChoiceField(choices=FLAG_CHOICES)), required=False
        )
        unsafe = serializers.DictField(child=serializers.BooleanField(), required=False)
        both_unacceptable = serializers.BooleanField(default=False)
        harm_severity = serializers.ChoiceField(choices=HarmSeverity.values, default=HarmSeverity.NONE)
        error_spans = serializers.ListField(child=serializers.DictField(), required=False)
        rationale = serializers.CharField(required=False, allow_blank=True, default="", max_length=10_000)
        time_spent_ms = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=24 * 3600 * 1000)

    @extend_schema(request=InputSerializer, responses={201: JudgmentOutput, 200: JudgmentOutput})
    def post(self, request, assignment_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        judgment, created = judgment_submit(
            assignment_id=assignment_id, rater=request.user, data=JudgmentInput(**data.validated_data)
        )
        return Response(JudgmentOutput(judgment).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class AssignmentSkipApi(APIView):
    permission_classes = [IsPhysician]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses={200: dict})
    def post(self, request, assignment_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = assignment_skip(assignment_id=assignment_id, rater=request.user, reason=data.validated_data["reason"])
        return Response({"assignment_id": assignment.pk, "status": assignment.status})


class AssignmentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    batch_id = serializers.IntegerField()
    status = serializers.CharField()
    leased_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()


class AssignmentListApi(APIView):
    """The caller's own leases, newest first, a page at a time like every other list."""

    permission_classes = [IsActiveUser]

    @extend_schema(responses=paginated_schema(AssignmentOutput))
    def get(self, request):
        return paginated(request, self, selectors.assignments_of(user=request.user), AssignmentOutput)


class AssignmentDetailApi(APIView):
    permission_classes = [IsActiveUser]

    @extend_schema(responses=dict)
    def get(self, request, assignment_id: int):
        assignment = selectors.assignment_of(user=request.user, assignment_id=assignment_id)
        return Response({**assignment_payload(assignment), "status": assignment.status})


class JudgmentListApi(APIView):
    """Physicians get their own judgments; admins get everyone's (filter with ?batch=)."""

    permission_classes = [IsActiveUser]

    @extend_schema(parameters=[OpenApiParameter("batch", int, required=False)], responses=paginated_schema(JudgmentOutput))
    def get(self, request):
        qs = selectors.judgments_visible_to(user=request.user, batch_id=query_int(request, "batch"))
        return paginated(request, self, qs, JudgmentOutput)


# ---------------------------------------------------------------- users, audit

class RaterOutput(serializers.Serializer):
    id = serializers.IntegerField(source="user.id")
    username = serializers.CharField(source="user.username")
    role = serializers.CharField()
    specialty = serializers.CharField(source="specialty.name", allow_null=True)
    credentials = serializers.CharField()
    is_active = serializers.BooleanField()


class RaterListCreateApi(APIView):
    permission_classes = [IsAdminRole]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(write_only=True, help_text="Checked by AUTH_PASSWORD_VALIDATORS.")
        specialty = serializers.CharField(max_length=100)
        role = serializers.ChoiceField(choices=Role.values, default=Role.PHYSICIAN)
        credentials = serializers.CharField(required=False, allow_blank=True, default="")
        email = serializers.EmailField(required=False, allow_blank=True, default="")

    @extend_schema(responses=RaterOutput(many=True))
    def get(self, request):
        return Response(RaterOutput(selectors.raters_with_stats(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: RaterOutput})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        user, specialty_created = services.rater_create(
            username=v["username"], password=v["password"], specialty_name=v["specialty"], role=v["role"],
            credentials=v["credentials"], email=v["email"], actor=request.user,
        )
        return Response({**RaterOutput(user.profile).data, "specialty_created": specialty_created}, status=status.HTTP_201_CREATED)


class RaterActiveApi(APIView):
    permission_classes = [IsAdminRole]

    class InputSerializer(serializers.Serializer):
        is_active = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses=RaterOutput)
    def post(self, request, user_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        profile = services.rater_set_active(user=selectors.user_get(user_id=user_id), is_active=data.validated_data["is_active"], actor=request.user)
        return Response(RaterOutput(profile).data)


class SpecialtyOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()


class SpecialtyListApi(APIView):
    permission_classes = [IsActiveUser]

    @extend_schema(responses=SpecialtyOutput(many=True))
    def get(self, request):
        from annotation.models import Specialty

        return Response([{"id": s.pk, "name": s.name, "slug": s.slug} for s in Specialty.objects.all()])


class AuditEventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    actor = serializers.CharField(source="actor.username", allow_null=True)
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    batch_id = serializers.IntegerField(allow_null=True)
    data = serializers.JSONField()
    created_at = serializers.DateTimeField()


class AuditListApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(responses=paginated_schema(AuditEventOutput))
    def get(self, request):
        p = request.query_params
        qs = selectors.audit_events(username=p.get("user"), batch_id=query_int(request, "batch"),
                                    object_type=p.get("object_type"), object_id=p.get("object_id"), action=p.get("action"))
        return paginated(request, self, qs, AuditEventOutput)


class MeApi(APIView):
    permission_classes = [IsActiveUser]

    @extend_schema(responses=dict)
    def get(self, request):
        profile = getattr(request.user, "profile", None)
        return Response({
            "id": request.user.pk, "username": request.user.username,
            "role": profile.role if profile else None,
            "specialty": profile.specialty.name if profile and profile.specialty else None,
        })
