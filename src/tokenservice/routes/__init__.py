"""One blueprint per resource."""

from . import health, me, token, users

BLUEPRINTS = (health.bp, users.bp, token.bp, me.bp)
