"""One blueprint per resource."""

from . import email_verification, health, jwks, logout, me, password_reset, sessions, token, users

BLUEPRINTS = (
    health.bp,
    users.bp,
    token.bp,
    logout.bp,
    me.bp,
    sessions.bp,
    password_reset.bp,
    email_verification.bp,
    jwks.bp,
)
