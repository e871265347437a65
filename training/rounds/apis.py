"""Round endpoints (admin only): create the next round, list rounds with their figures, one round,
cancel and resume generation. Physicians never reach these; the rule, the models and the reward
model's prediction of a pair are served here and nowhere else."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser

from annotation.parsers import BoundedJSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.permissions import IsAdminRole

from ..models import Round
from . import selection, selectors, services


class RoundOutputSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField()

    class Meta:
        model = Round
        fields = [
            "id", "number", "status", "source_run", "source_model", "reward_run", "previous_batch", "previous_round", "batch",
            "batch_name", "options", "models_used", "is_demo", "engine", "responses_total", "responses_done", "progress",
            "attempts", "host", "heartbeat_at", "started_at", "finished_at", "cancel_requested", "error", "created_at",
        ]


def round_response(rnd: Round, *, with_measures: bool = False, status_code=status.HTTP_200_OK) -> Response:
    data = RoundOutputSerializer(rnd).data
    data["prompts"] = len(rnd.prompts)
    if with_measures and rnd.batch_id:
        data["measures"] = selectors.round_measures(rnd=rnd)
    return Response(data, status=status_code)


class RoundListApi(APIView):
    permission_classes = [IsAdminRole]
    parser_classes = [BoundedJSONParser, MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        source_run = serializers.IntegerField(required=False, min_value=1, help_text="A succeeded policy run to sample.")
        source_model = serializers.CharField(required=False, allow_blank=True, default="", max_length=500,
                                             help_text="Or a registered model: a hub id or a path on the GPU host.")
        reference_model = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)
        previous_batch = serializers.IntegerField(required=False, min_value=1)
        use_previous_prompts = serializers.BooleanField(default=True)
        prompts = serializers.ListField(child=serializers.CharField(), required=False,
                                        help_text="Extra prompts (the JSON form of a prompts JSONL).")
        prompts_file = serializers.FileField(required=False, help_text='JSONL, one {"prompt": "..."} per line.')
        reward_run = serializers.IntegerField(required=False, min_value=1)
        batch_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
        responses_per_prompt = serializers.IntegerField(required=False, min_value=1, max_value=16)
        temperature = serializers.FloatField(required=False, min_value=0.0, max_value=5.0)
        top_p = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        max_new_tokens = serializers.IntegerField(required=False, min_value=1, max_value=8192)
        seed = serializers.IntegerField(required=False, min_value=0)
        models = serializers.ListField(child=serializers.ChoiceField(choices=services.ROLES), required=False)
        n_pairs = serializers.IntegerField(required=False, min_value=1)
        shares = serializers.DictField(child=serializers.FloatField(min_value=0.0), required=False,
                                       help_text=f"Share of pairs per rule; defaults {selection.DEFAULT_SHARES}.")
        engine = serializers.ChoiceField(choices=["auto", "vllm", "transformers"], required=False)

    @extend_schema(responses=inline_serializer("RoundList", {
        "rounds": RoundOutputSerializer(many=True),
        "ratings": serializers.ListField(child=serializers.DictField(), help_text="Bradley-Terry rating per model across rounds."),
    }))
    def get(self, request):
        overview = selectors.rounds_overview()
        rows = []
        for row in overview["rows"]:
            data = RoundOutputSerializer(row["round"]).data
            data["measures"] = row["measures"]
            data["training_runs"] = [r.pk for r in row["runs"]]
            rows.append(data)
        return Response({"rounds": rows, "ratings": overview["ratings"]})

    @extend_schema(request=InputSerializer, responses={201: RoundOutputSerializer})
    def post(self, request):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        lines = None
        if d.get("prompts_file"):
            lines = list(d["prompts_file"])
        if d.get("prompts"):
            import json

            lines = (lines or []) + [json.dumps({"prompt": p}) for p in d["prompts"]]
        options = {k: d[k] for k in ("responses_per_prompt", "temperature", "top_p", "max_new_tokens", "seed", "models",
                                     "n_pairs", "shares", "engine") if k in d}
        rnd = services.round_create(
            created_by=request.user, source_run_id=d.get("source_run"), source_model=d["source_model"],
            reference_model=d["reference_model"], previous_batch_id=d.get("previous_batch"),
            use_previous_prompts=d["use_previous_prompts"], prompt_lines=lines, reward_run_id=d.get("reward_run"),
            batch_name=d["batch_name"], options=options,
        )
        return round_response(selectors.round_get(round_id=rnd.pk), status_code=status.HTTP_201_CREATED)


class RoundDetailApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(responses={200: dict})
    def get(self, request, round_id: int):
        return round_response(selectors.round_get(round_id=round_id), with_measures=True)


class RoundCancelApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(request=None, responses={202: RoundOutputSerializer, 409: dict})
    def post(self, request, round_id: int):
        rnd = services.round_cancel(round_id=round_id, actor=request.user)
        return round_response(selectors.round_get(round_id=rnd.pk), status_code=status.HTTP_202_ACCEPTED)


class RoundResumeApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(request=None, responses={202: RoundOutputSerializer, 409: dict})
    def post(self, request, round_id: int):
        rnd = services.round_resume(round_id=round_id, actor=request.user)
        return round_response(selectors.round_get(round_id=rnd.pk), status_code=status.HTTP_202_ACCEPTED)
