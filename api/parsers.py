from django.core.exceptions import TooManyFilesSent
from rest_framework.exceptions import ParseError
from rest_framework.parsers import MultiPartParser

from common.web import request_refusal


class UploadParser(MultiPartParser):
    """Multipart with the upload page's message for a request it cannot read (too many files, a huge name)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except (ParseError, TooManyFilesSent) as exc:
            # DRF wraps Django's parser error; the wrapped one says what went wrong.
            raise ParseError(request_refusal(exc.__context__ if isinstance(exc, ParseError) else exc)) from exc
