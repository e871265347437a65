from django.urls import path

from annotation.labeling import apis

urlpatterns = [
    path("me/", apis.MeApi.as_view(), name="me"),
    path("batches/", apis.BatchListCreateApi.as_view(), name="batch-list"),
    path("batches/<int:batch_id>/", apis.BatchDetailApi.as_view(), name="batch-detail"),
    path("batches/<int:batch_id>/pairs/", apis.BatchPairsImportApi.as_view(), name="batch-pairs"),
    path("imports/<int:job_id>/", apis.ImportJobDetailApi.as_view(), name="import-job-detail"),
    path("batches/<int:batch_id>/open/", apis.BatchOpenApi.as_view(), name="batch-open"),
    path("batches/<int:batch_id>/close/", apis.BatchCloseApi.as_view(), name="batch-close"),
    path("batches/<int:batch_id>/settings/", apis.BatchSettingsApi.as_view(), name="batch-settings"),
    path("batches/<int:batch_id>/phi/", apis.BatchPhiReviewApi.as_view(), name="batch-phi"),
    path("pairs/<int:pair_id>/gold/", apis.PairGoldApi.as_view(), name="pair-gold"),
    path("next/", apis.NextPairApi.as_view(), name="next-pair"),
    path("assignments/", apis.AssignmentListApi.as_view(), name="assignment-list"),
    path("assignments/<int:assignment_id>/", apis.AssignmentDetailApi.as_view(), name="assignment-detail"),
    path("assignments/<int:assignment_id>/judgment/", apis.JudgmentSubmitApi.as_view(), name="judgment-submit"),
    path("assignments/<int:assignment_id>/skip/", apis.AssignmentSkipApi.as_view(), name="assignment-skip"),
    path("judgments/", apis.JudgmentListApi.as_view(), name="judgment-list"),
    path("raters/", apis.RaterListCreateApi.as_view(), name="rater-list"),
    path("raters/<int:user_id>/active/", apis.RaterActiveApi.as_view(), name="rater-active"),
    path("specialties/", apis.SpecialtyListApi.as_view(), name="specialty-list"),
    path("audit/", apis.AuditListApi.as_view(), name="audit-list"),
]
