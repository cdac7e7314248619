"""Rule kinds, one module each (each registers itself with :func:`..registry.kind`)."""
