"""One blueprint per resource."""

from . import health, jwks, logout, me, token, users

BLUEPRINTS = (health.bp, users.bp, token.bp, logout.bp, me.bp, jwks.bp)
