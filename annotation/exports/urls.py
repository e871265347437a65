from django.urls import path

from annotation.exports.apis import ExportCreateApi, ExportDetailApi, ExportFileApi, ExportListApi

urlpatterns = [
    path("batches/<int:batch_id>/exports/", ExportCreateApi.as_view(), name="export-create"),
    path("exports/", ExportListApi.as_view(), name="export-list"),
    path("exports/<int:export_id>/", ExportDetailApi.as_view(), name="export-detail"),
    path("exports/<int:export_id>/files/<str:name>", ExportFileApi.as_view(), name="export-file"),
]
