"""Tokens this worker has already verified: the same token string is not decoded again.

Flask-JWT-Extended decodes every token three times (its claims unverified,
for the decode_key_loader; its header unverified; then verified), and PyJWT
checks every character of every segment in Python: together about a sixth
of a worker's time on a guarded read
(docs/decisions/0009-verify-each-token-string-once.md). The library offers
no hook for this, so this subclass wraps its decoding method.

This module is the one place that relies on Flask-JWT-Extended 4.x's
internals (tests/unit/test_library_contracts.py holds it to them): the private
`JWTManager._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)`,
and the `jwt_header` and `jwt_data` it attaches to an ExpiredSignatureError.

A token is the same only as the same string: its signature was checked
against this app's keys, which never change while it runs, and its claims
(iss, aud, shape) are in the string. What changes is time, so expiry and
not-before are checked again at every use (by `clock`, as PyJWT would, with
its errors). A cookie request (with its CSRF
value) and a read of an expired token (logout) always take the library's
path. Each app has its own memory: tests run apps with different keys in one
process.
"""

import time

import jwt
from flask import current_app
from flask_jwt_extended import JWTManager

MAX_TOKENS = 1000  # about 1.5 KB each
clock = time.time  # a test gives its own


class RememberingJWTManager(JWTManager):
    def _decode_jwt_from_config(self, encoded_token: str, csrf_value=None, allow_expired: bool = False) -> dict:
        if csrf_value is not None or allow_expired:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        remembered = current_app.extensions.setdefault("decoded_tokens", {})
        claims = remembered.get(encoded_token)
        if claims is not None:
            now, leeway = clock(), current_app.config["JWT_DECODE_LEEWAY"]
            if claims["exp"] <= now - leeway:
                expired = jwt.ExpiredSignatureError("Signature has expired")
                # What the library attaches to this error for its expired-token callback.
                expired.jwt_header = jwt.get_unverified_header(encoded_token)  # type: ignore[attr-defined]
                expired.jwt_data = dict(claims)  # type: ignore[attr-defined]
                raise expired
            if claims.get("nbf", now) > now + leeway:
                raise jwt.ImmatureSignatureError("The token is not yet valid (nbf)")
            return dict(claims)
        claims = super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        if len(remembered) >= MAX_TOKENS:
            remembered.clear()
        remembered[encoded_token] = claims
        return dict(claims)


def expired_claims(error: jwt.ExpiredSignatureError) -> dict:
    """The claims of an expired token, which the library decoded with its signature checked."""
    return error.jwt_data  # type: ignore[attr-defined]
