"""Export endpoints: thin views over export_services (admin only)."""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.api import paginated, paginated_schema
from annotation.exports import services as export_services
from annotation.exports import FORMATS, POLICIES, TIE_MODES
from annotation.models import ExportSnapshot
from annotation.permissions import IsAdminRole


class ExportOutputSerializer(serializers.ModelSerializer):
    batch = serializers.IntegerField(source="batch_id")
    created_by = serializers.CharField(source="created_by.username", default=None)
    files = serializers.SerializerMethodField()

    class Meta:
        model = ExportSnapshot
        fields = ["id", "batch", "version", "params", "params_sha256", "files", "manifest", "created_by", "created_at"]

    def get_files(self, obj) -> list[dict]:
        # The storage path is an implementation detail: clients fetch by name.
        return [{k: v for k, v in f.items() if k != "path"} for f in obj.files]


class ExportCreateApi(APIView):
    permission_classes = [IsAdminRole]

    class InputSerializer(serializers.Serializer):
        # Loose shapes here; the domain validation (export_params_validate) gives the precise
        # message for everything, including unknown keys, so both paths say the same thing.
        policy = serializers.ChoiceField(choices=POLICIES, required=False)
        # Plain strings: the unknown-format message comes from the domain validation, which
        # lists the allowed formats (per-item ChoiceField errors are keyed by index).
        formats = serializers.ListField(child=serializers.CharField(), required=False,
                                        help_text=f"any of: {', '.join(FORMATS)}")
        ties = serializers.ChoiceField(choices=TIE_MODES, required=False)
        test_fraction = serializers.FloatField(required=False, min_value=0, max_value=0.999)
        seed = serializers.IntegerField(required=False, min_value=0)

    @extend_schema(request=InputSerializer, responses={201: ExportOutputSerializer})
    def post(self, request, batch_id: int):
        data = request.data if isinstance(request.data, dict) else {}
        self.InputSerializer(data=data).is_valid(raise_exception=True)
        snapshot = export_services.export_create(batch=batch_id, params=dict(data), created_by=request.user)
        return Response(ExportOutputSerializer(snapshot).data, status=status.HTTP_201_CREATED)


class ExportListApi(APIView):
    permission_classes = [IsAdminRole]

    class FilterSerializer(serializers.Serializer):
        batch = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(parameters=[OpenApiParameter("batch", int, required=False)], responses=paginated_schema(ExportOutputSerializer))
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = export_services.export_list(batch_id=filters.validated_data.get("batch"))
        return paginated(request, self, qs, ExportOutputSerializer)


class ExportDetailApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(responses=ExportOutputSerializer)
    def get(self, request, export_id: int):
        return Response(ExportOutputSerializer(export_services.export_get(export_id=export_id)).data)


class ExportFileApi(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, export_id: int, name: str):
        snapshot = export_services.export_get(export_id=export_id)
        fh = export_services.export_file_download(snapshot=snapshot, name=name, actor=request.user)
        content_type = "application/json" if name.endswith(".json") else (
            "application/x-ndjson" if name.endswith(".jsonl") else (
                "text/markdown; charset=utf-8" if name.endswith(".md") else "application/octet-stream"))
        response = FileResponse(fh, as_attachment=True, filename=f"batch{snapshot.batch_id}-v{snapshot.version}-{name}",
                                content_type=content_type)
        entry = export_services.export_file_entry(snapshot=snapshot, name=name)
        response["X-Content-SHA256"] = entry["sha256"]
        return response
