"""One blueprint per resource."""

from . import health, logout, me, token, users

BLUEPRINTS = (health.bp, users.bp, token.bp, logout.bp, me.bp)
