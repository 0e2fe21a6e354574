"""Error responses as the schema documents them (api.errors produces them)."""

from drf_spectacular.utils import OpenApiResponse

from api.serializers.common import MessageSerializer

NOT_FOUND = OpenApiResponse(MessageSerializer, description="No such submission visible to you.")
CONFLICT = OpenApiResponse(MessageSerializer, description="Someone or something got there first.")
