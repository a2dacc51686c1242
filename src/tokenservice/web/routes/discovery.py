from urllib.parse import urlsplit

from flask import current_app

from ...rules.clients import SCOPES
from ...rules.exceptions import NotDiscoverable
from ..guards import ANYONE
from ..openapi import Blueprint, errors
from ..schemas import DiscoverySchema
from .jwks import MAX_AGE_SECONDS

bp = Blueprint("discovery", __name__, description="Where other services find the issuer, keys and endpoints")

CLIENT_AUTH = ["client_secret_basic", "client_secret_post"]


@bp.route("/.well-known/oauth-authorization-server", methods=["GET"], guard=ANYONE)
@errors(404)
@bp.response(200, DiscoverySchema, headers={"Cache-Control": {"schema": {"type": "string"}}})
def authorization_server():
    """RFC 8414 metadata: the issuer, token endpoint, keys, grants, introspection and revocation (needs JWT_ISSUER)."""
    return _metadata(), {"Cache-Control": f"public, max-age={MAX_AGE_SECONDS}"}


@bp.route("/.well-known/openid-configuration", methods=["GET"], guard=ANYONE)
@errors(404)
@bp.response(200, DiscoverySchema, headers={"Cache-Control": {"schema": {"type": "string"}}})
def openid_configuration():
    """The same metadata where OIDC libraries and gateways look first (this service issues no ID tokens)."""
    return _metadata(), {"Cache-Control": f"public, max-age={MAX_AGE_SECONDS}"}


def _metadata() -> dict:
    """Only what is true of this service (docs/clients.md, "Discovery"): no authorization endpoint, so no
    response types; a jwks_uri only when there are public keys (RS256, ES256)."""
    config = current_app.config
    issuer = config["JWT_ENCODE_ISSUER"]
    if not is_discoverable(issuer):
        raise NotDiscoverable()
    base = issuer.rstrip("/")
    metadata = {
        "issuer": issuer,
        "token_endpoint": f"{base}/token",
        "grant_types_supported": ["password", "refresh_token", "client_credentials"],
        # "none": the password and refresh grants of a public client (the SPA) send no client credentials.
        "token_endpoint_auth_methods_supported": [*CLIENT_AUTH, "none"],
        "response_types_supported": [],
        "scopes_supported": list(SCOPES),
        "introspection_endpoint": f"{base}/introspect",
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH,
        "revocation_endpoint": f"{base}/revoke",
        "revocation_endpoint_auth_methods_supported": ["none", *CLIENT_AUTH],
        "service_documentation": f"{base}/docs",
    }
    if config["SIGNING_KEYS"].jwks() is not None:
        metadata["jwks_uri"] = f"{base}/.well-known/jwks.json"
    return metadata


def is_discoverable(issuer: str | None) -> bool:
    """An issuer other services can start from: an https:// URL (http:// for localhost) without path, query or
    fragment (with a path, RFC 8414 3 would put the documents under /.well-known/.../<path>, which this service
    does not serve)."""
    if not issuer:
        return False
    parts = urlsplit(issuer)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    secure = parts.scheme == "https" or (parts.scheme == "http" and local)
    return secure and bool(parts.hostname) and parts.path in ("", "/") and not parts.query and not parts.fragment
