"""The gate engine: rule model and loader, message view, one matcher, rule kinds, findings.

It knows no client and no policy: the knowledge is in the rule folders (``brand_rules/``,
``compliance/``): rules, word lists (``vocab/``), the accept list and fix texts.
"""
