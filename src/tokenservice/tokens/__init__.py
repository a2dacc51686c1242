"""Tokens: their claims, the signing keys, issuing, the cookies of cookie mode, and the caches that check them fast.

Above the rules (a token's session is live when rules/sessions.py says so), below the web layer.
"""
