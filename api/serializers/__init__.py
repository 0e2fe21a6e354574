"""Input and output shapes only, one module per resource; every rule lives in the services and selectors."""
