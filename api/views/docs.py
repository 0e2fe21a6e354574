"""The API documentation, served without a CDN."""

from importlib.resources import files

from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.negotiation import AnyAccept

REDOC_BUNDLE = files("drf_spectacular_sidecar") / "static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
# Redoc renders with inline styles and scripts and a blob worker; the page holds public documentation only.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"
)


class DocsView(SpectacularRedocView):
    """Redoc with its script served by this app from drf-spectacular-sidecar: no CDN, no web fonts."""

    template_name = "api/redoc.html"

    @staticmethod
    def _redoc_standalone() -> str:
        return reverse("api:redoc-bundle")

    @extend_schema(exclude=True)
    def get(self, request: Request, *args, **kwargs) -> Response:
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CONTENT_SECURITY_POLICY
        return response


class RedocBundleView(APIView):
    permission_classes = [AllowAny]
    content_negotiation_class = AnyAccept

    @extend_schema(exclude=True)
    def get(self, request: Request) -> FileResponse:
        response = FileResponse(REDOC_BUNDLE.open("rb"), content_type="text/javascript")
        response["Cache-Control"] = "public, max-age=86400"
        return response
