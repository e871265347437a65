from django.contrib.auth import views as auth_views
from django.urls import path

from . import adjudication_views, dashboard_views, insight_views, round_views, views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="frontend/login.html", redirect_authenticated_user=True),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("label/<int:batch_id>/", views.label, name="label"),
    path("workspace/<int:batch_id>/next.json", views.next_pair_json, name="workspace-next"),
    path("judgments/<int:judgment_id>/", views.judgment_review, name="judgment-review"),
    path("judgments/<int:judgment_id>/correct/", views.judgment_correct, name="judgment-correct"),
    path("adjudicate/", adjudication_views.disputes, name="adjudicate"),
    path("adjudicate/pairs/<int:pair_id>/", adjudication_views.pair, name="adjudicate-pair"),
    path("dashboard/", dashboard_views.batches, name="dashboard"),
    path("dashboard/batches/<int:batch_id>/", dashboard_views.batch_detail, name="dashboard-batch"),
    path("dashboard/batches/<int:batch_id>/upload/", dashboard_views.batch_upload, name="dashboard-batch-upload"),
    path("dashboard/batches/<int:batch_id>/open/", dashboard_views.batch_open, name="dashboard-batch-open"),
    path("dashboard/batches/<int:batch_id>/close/", dashboard_views.batch_close, name="dashboard-batch-close"),
    path("dashboard/raters/", dashboard_views.raters, name="dashboard-raters"),
    path("dashboard/raters/<int:user_id>/active/", dashboard_views.rater_active, name="dashboard-rater-active"),
    path("dashboard/audit/", dashboard_views.audit, name="dashboard-audit"),
    path("dashboard/batches/<int:batch_id>/agreement/", insight_views.agreement, name="dashboard-agreement"),
    path("dashboard/agreement/", insight_views.agreement_trend, name="dashboard-agreement-trend"),
    path("dashboard/exports/", insight_views.exports, name="dashboard-exports"),
    path("dashboard/training/", insight_views.training_runs, name="dashboard-training"),
    path("dashboard/training/<int:run_id>/", insight_views.training_run, name="dashboard-training-run"),
    path("dashboard/training/<int:run_id>/cancel/", insight_views.training_run_cancel, name="dashboard-training-cancel"),
    path("dashboard/rounds/", round_views.rounds, name="dashboard-rounds"),
    path("dashboard/rounds/<int:round_id>/cancel/", round_views.round_cancel, name="dashboard-round-cancel"),
    path("dashboard/rounds/<int:round_id>/resume/", round_views.round_resume, name="dashboard-round-resume"),
    path("dashboard/rounds/<int:round_id>/simulate/", round_views.round_simulate, name="dashboard-round-simulate"),
]
