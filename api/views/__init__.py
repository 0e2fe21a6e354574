"""The REST API, one module per resource; every domain error is mapped once, in api.errors."""
