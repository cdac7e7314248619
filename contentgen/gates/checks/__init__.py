"""Named checks (``kind: check``): what a word list cannot say, with typed params.

One module per topic; each check is a class registered with
:func:`~contentgen.gates.engine.registry.check`, takes its rule's ``params`` validated by its
``Params`` model, and keeps what it compiles on itself (never in module state keyed by rule id).
The vocabularies they use are data in the rule folders.
"""
