"""One blueprint per resource."""

from . import email_verification, health, jwks, logout, me, mfa, password_reset, sessions, signin_alerts, token, users

BLUEPRINTS = (
    health.bp,
    users.bp,
    token.bp,
    logout.bp,
    me.bp,
    sessions.bp,
    mfa.bp,
    signin_alerts.bp,
    password_reset.bp,
    email_verification.bp,
    jwks.bp,
)
