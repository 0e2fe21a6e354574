from django.urls import path

from detection import views

urlpatterns = [
    path("detections/<int:pk>/heatmap", views.heatmap_request_post, name="heatmap_request"),
    path("detections/<int:pk>/heatmaps.json", views.heatmap_layers_rendered, name="heatmap_layers_rendered"),
    path("heatmaps/<int:pk>.png", views.heatmap_image, name="heatmap_image"),
    path("health/", views.health_json, name="health"),
    path("settings/models/", views.model_settings, name="model_settings"),
    path("settings/models/activate", views.model_activate, name="model_activate"),
    path("settings/models/<str:name>/thresholds", views.model_thresholds, name="model_thresholds"),
    path("settings/models/<str:name>/report", views.model_report, name="model_report"),
    path("settings/thresholds/<int:pk>/revert", views.model_thresholds_revert_post, name="model_thresholds_revert"),
]
