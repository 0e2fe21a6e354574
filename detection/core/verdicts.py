"""The calibrated band turned into a verdict; torch-free so the Django side applies admins' overrides."""


def verdict_for(probability: float, *, low: float, high: float) -> str:
    """`ai` at or above `high`, `real` below `low`, and in between `uncertain`: a human decides."""
    if probability >= high:
        return "ai"
    if probability < low:
        return "real"
    return "uncertain"
