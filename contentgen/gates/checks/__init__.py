"""Named checks (``kind: check``): what a word list cannot say, with typed params.

One module per topic; each check is a class that names itself (``name = "facts.prices"``: see
:mod:`~contentgen.gates.engine.registry`), takes its rule's ``params`` validated by its ``Params``
model (pydantic, in the sibling ``<module>_models.py``, which stays interpreted when the gates are
compiled), and keeps what it compiles on itself (never in module state keyed by rule id).
The vocabularies they use are data in the rule folders.
"""
