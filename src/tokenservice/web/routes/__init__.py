"""One blueprint per resource."""

from . import (
    clients,
    discovery,
    email_verification,
    health,
    introspection,
    jwks,
    logout,
    me,
    mfa,
    password_reset,
    revocation,
    sessions,
    signin_alerts,
    token,
    users,
)

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
    discovery.bp,
    clients.bp,
    introspection.bp,
    revocation.bp,
)
