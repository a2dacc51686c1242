"""The rules: who may log in, what a session is, which passwords and roles are allowed, and their refusals.

No Flask request and nothing of HTTP here (tests/unit/test_layers.py holds it): a rule
raises a refusal (exceptions.py) and web/errors.py turns it into an answer.
"""
