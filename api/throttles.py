from django.conf import settings
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle


class AccountRateThrottle(UserRateThrottle):
    """Per account (token or session), counted in the shared cache; the platform's own ingestion accounts
    (API_INGESTION_ACCOUNTS) get their pipeline's rate instead."""

    scope = "user"

    def allow_request(self, request, view) -> bool:
        # Read at request time: DRF's class-level THROTTLE_RATES is frozen at import and ignores settings overrides.
        ingestion = request.user.is_authenticated and request.user.get_username() in settings.API_INGESTION_ACCOUNTS
        rates = api_settings.DEFAULT_THROTTLE_RATES
        self.rate = rates.get(f"{self.scope}_ingestion", rates[self.scope]) if ingestion else rates[self.scope]
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)


class UploadRateThrottle(AccountRateThrottle):
    """Stricter than the general rate: each upload costs a model run."""

    scope = "upload"
