"""Rule kinds, one module each (each class names itself: ``name = "regex"``; see :mod:`..registry`)."""
