from django.urls import path

from moderation.views import audit, dashboard, learning, review, submissions

urlpatterns = [
    path("", submissions.home, name="home"),
    path("upload/", submissions.upload, name="upload"),
    path("upload/scenery.json", submissions.scenery_suggestion_json, name="scenery_suggestion"),
    path("submissions/", submissions.submission_list_page, name="submission_list"),
    path("submissions/status.json", submissions.submission_statuses_json, name="submission_statuses"),
    path("submissions/<int:pk>/", submissions.submission_detail, name="submission_detail"),
    path("submissions/<int:pk>/original", submissions.submission_original, name="submission_original"),
    path("submissions/<int:pk>/decide", review.submission_decide_post, name="submission_decide"),
    path("submissions/<int:pk>/requeue", review.submission_requeue_post, name="submission_requeue"),
    path("submissions/<int:pk>/reanalyse", review.submission_reanalyse_post, name="submission_reanalyse"),
    path("submissions/<int:pk>/claim", review.submission_claim_post, name="submission_claim"),
    path("submissions/<int:pk>/release", review.submission_release_post, name="submission_release"),
    path("submissions/<int:pk>/appeal", submissions.submission_appeal, name="submission_appeal"),
    path("queue/", review.queue, name="queue"),
    path("queue/next", review.queue_next, name="queue_next"),
    path("queue/decide", review.queue_bulk_decide, name="queue_bulk_decide"),
    path("appeals/", review.appeal_queue_page, name="appeal_queue"),
    path("appeals/<int:pk>/decide", review.appeal_decide_post, name="appeal_decide"),
    path("audit/", audit.audit_log_page, name="audit_log"),
    path("statistics/", dashboard.statistics_page, name="statistics"),
    path("statistics.csv", dashboard.statistics_csv, name="statistics_csv"),
    path("settings/models/<str:name>/recalibrate", learning.recalibration_preview, name="recalibration_preview"),
    path("settings/models/<str:name>/recalibrate/apply", learning.recalibration_apply_post, name="recalibration_apply"),
]
