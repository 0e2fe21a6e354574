from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle


class UploadRateThrottle(UserRateThrottle):
    """Per account (token or session), stricter than the general rate: each upload costs a model run."""

    scope = "upload"

    def get_rate(self) -> str:
        # Read at request time: DRF's class-level THROTTLE_RATES is frozen at import and ignores settings overrides.
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
