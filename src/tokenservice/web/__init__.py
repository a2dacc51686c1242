"""HTTP: the routes, each with its one guard, the request schemas and checks, errors as answers, and what wraps them.

The only layer that knows of requests and responses: it calls the rules and tokens, and
errors.py turns their refusals into JSON errors.
"""
