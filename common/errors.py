"""The domain's error tree. Services raise these; each interface maps them once: the API through
api.errors.exception_handler (DRF), the pages through common.web.domain_errors (a view decorator).

    DomainError
    ├── Invalid    400  the input cannot be used (a reason that does not fit, an unknown model)
    ├── Forbidden  403  this user may not do this (not the uploader, the moderator who rejected)
    ├── NotFound   404  no such thing, or not one the user may see
    ├── Conflict   409  someone or something got there first (the state moved on, a claim is held)
    └── Unavailable 503 a service the portal relies on is out of reach for now (the broker): try again

A missing row (Django's ObjectDoesNotExist) is a NotFound too. Anything else, a bare ValueError
included, is a bug: a 500, never dressed up as the user's mistake.
"""


class DomainError(Exception):
    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        # The input field the message is about, so a form or an API client can show it in place.
        self.field = field


class Invalid(DomainError):
    status = 400


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Unavailable(DomainError):
    status = 503
