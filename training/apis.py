"""Training endpoints (admin only): list and start runs, one run with its metrics, cancel."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import paginated, paginated_schema
from annotation.permissions import IsAdminRole

from . import selectors, services
from .configs import PIPELINES
from .models import RunKind, RunStatus, TrainingRun


class TrainingRunOutputSerializer(serializers.ModelSerializer):
    batch = serializers.IntegerField(source="export.batch_id")
    created_by = serializers.CharField(source="created_by.username", default=None)
    pipeline_spec = serializers.CharField(source="pipeline.spec")

    class Meta:
        model = TrainingRun
        fields = [
            "id", "pipeline", "pipeline_spec", "stage", "parent", "kind", "status", "export", "batch", "base_model",
            "is_demo", "note", "config", "host", "progress", "current_step", "total_steps", "heartbeat_at",
            "started_at", "finished_at", "attempts", "final_metrics", "artifact_path", "error", "cancel_requested",
            "created_by", "created_at",
        ]


class TrainingRunListApi(APIView):
    permission_classes = [IsAdminRole]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
        kind = serializers.ChoiceField(choices=RunKind.choices, required=False)
        batch = serializers.IntegerField(required=False, min_value=1)
        export = serializers.IntegerField(required=False, min_value=1)
        pipeline = serializers.IntegerField(required=False, min_value=1)

    class InputSerializer(serializers.Serializer):
        export = serializers.IntegerField(min_value=1)
        pipeline = serializers.ChoiceField(choices=list(PIPELINES), default="reward_model>ppo")
        base_model = serializers.CharField(
            required=False, allow_blank=True, max_length=500, default="",
            help_text="A hub id or a path on the GPU host, or run:<id> to start from the model a succeeded run trained "
                      "(a reward-model run for a reward model, a policy run for a policy). Empty: the configured default.")
        params = serializers.DictField(required=False, default=dict,
                                       help_text='Flat hyper-parameters, or per-kind sections such as {"ppo": {"kl_coef": 0.1}}.')

    @extend_schema(parameters=[OpenApiParameter(n, str, required=False) for n in ("status", "kind", "batch", "export", "pipeline")],
                   responses=paginated_schema(TrainingRunOutputSerializer))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        f = filters.validated_data
        qs = selectors.training_run_list(status=f.get("status"), kind=f.get("kind"), batch_id=f.get("batch"),
                                         export_id=f.get("export"), pipeline_id=f.get("pipeline"))
        return paginated(request, self, qs, TrainingRunOutputSerializer)

    @extend_schema(request=InputSerializer, responses={201: TrainingRunOutputSerializer(many=True)})
    def post(self, request):
        body = self.InputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        runs = services.training_start(export_id=d["export"], pipeline=d["pipeline"], base_model=d["base_model"],
                                       params=d["params"], created_by=request.user)
        return Response({"pipeline": runs[0].pipeline_id, "runs": TrainingRunOutputSerializer(runs, many=True).data},
                        status=status.HTTP_201_CREATED)


class TrainingRunDetailApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(responses={200: dict})
    def get(self, request, run_id: int):
        run = selectors.training_run_get(run_id=run_id)
        data = TrainingRunOutputSerializer(run).data
        data["log_tail"] = run.log_tail
        data.update(selectors.training_run_detail(run=run))
        return Response(data)


class TrainingRunCancelApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(request=None, responses={202: TrainingRunOutputSerializer, 409: dict})
    def post(self, request, run_id: int):
        run = services.run_cancel(run_id=run_id, actor=request.user)
        return Response(TrainingRunOutputSerializer(selectors.training_run_get(run_id=run.pk)).data, status=status.HTTP_202_ACCEPTED)
