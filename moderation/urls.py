from django.urls import path

from moderation import views

urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("submissions/", views.submission_list, name="submission_list"),
    path("submissions/status.json", views.submission_statuses, name="submission_statuses"),
    path("submissions/<int:pk>/", views.submission_detail, name="submission_detail"),
    path("submissions/<int:pk>/original", views.submission_original, name="submission_original"),
    path("submissions/<int:pk>/decide", views.submission_decide, name="submission_decide"),
    path("submissions/<int:pk>/requeue", views.submission_requeue, name="submission_requeue"),
    path("submissions/<int:pk>/reanalyse", views.submission_reanalyse, name="submission_reanalyse"),
    path("submissions/<int:pk>/claim", views.submission_claim, name="submission_claim"),
    path("submissions/<int:pk>/release", views.submission_release, name="submission_release"),
    path("submissions/<int:pk>/appeal", views.submission_appeal, name="submission_appeal"),
    path("detections/<int:pk>/heatmap", views.heatmap_request, name="heatmap_request"),
    path("detections/<int:pk>/heatmaps.json", views.heatmap_layers_rendered, name="heatmap_layers_rendered"),
    path("heatmaps/<int:pk>.png", views.heatmap_image, name="heatmap_image"),
    path("queue/", views.queue, name="queue"),
    path("queue/next", views.queue_next, name="queue_next"),
    path("queue/decide", views.queue_bulk_decide, name="queue_bulk_decide"),
    path("appeals/", views.appeal_queue, name="appeal_queue"),
    path("appeals/<int:pk>/decide", views.appeal_decide, name="appeal_decide"),
    path("audit/", views.audit_log, name="audit_log"),
    path("statistics/", views.statistics_page, name="statistics"),
    path("statistics.csv", views.statistics_csv, name="statistics_csv"),
    path("settings/models/", views.model_settings, name="model_settings"),
    path("settings/models/activate", views.model_activate, name="model_activate"),
    path("settings/models/<str:name>/thresholds", views.model_thresholds, name="model_thresholds"),
    path("settings/models/<str:name>/report", views.model_report, name="model_report"),
]
