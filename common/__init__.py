"""What every app may use and nothing of ours is imported by: deferred task sending, the domain errors."""
