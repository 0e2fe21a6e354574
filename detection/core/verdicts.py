"""The calibrated band turned into a verdict; torch-free so the Django side applies admins' overrides."""


def verdict_for(probability: float, *, low: float, high: float) -> str:
    """`ai` at or above `high`, `real` below `low`, and in between `uncertain`: a human decides."""
    if probability >= high:
        return "ai"
    if probability < low:
        return "real"
    return "uncertain"


def verdict_stable(probability: float, variant: float | None, *, low: float, high: float) -> str:
    """The verdict, but `uncertain` when the mildly re-encoded image's verdict differs: a verdict that one
    re-encoding flips is not one to act on, and never `ai`."""
    verdict = verdict_for(probability, low=low, high=high)
    if variant is not None and verdict_for(variant, low=low, high=high) != verdict:
        return "uncertain"
    return verdict
