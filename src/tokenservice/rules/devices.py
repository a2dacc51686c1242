"""Device tokens: how a client that has logged in before proves it, so that strangers' guesses cannot lock it out.

A successful password login answers with a `device_token` bound to that
user and to the password they logged in with; a later POST /token that
sends it back is counted in that device's own allowance of failed logins
(login_failures.py), not with the strangers'.

It is not a credential: it logs nobody in and opens no session, and it is
not a JWT, so no service that trusts this service's tokens can mistake it
for one. It is signed with HMAC-SHA256 under a key derived from the signing
key, so every worker and instance can check it without storing it. It stops
being recognised when the password changes (someone who once knew the old
password cannot keep a stock of allowances for guessing the new one) and
when the signing key changes; the device then counts as a stranger until its
next successful login. A token that is not one of ours, or names another
user, is simply not recognised.
"""

import base64
import functools
import hashlib
import hmac
import re
import uuid

from flask import current_app

VERSION = "dv1"
_TOKEN = re.compile(rf"{VERSION}\.([1-9][0-9]{{0,9}})\.([0-9a-f]{{32}})\.([A-Za-z0-9_-]{{43}})")


def device_token(*, user_id: int, device_id: uuid.UUID, password_hash: str) -> str:
    payload = f"{VERSION}.{user_id}.{device_id.hex}"
    return f"{payload}.{_mac(payload, password_hash)}"


def recognised_device(token: str | None, *, user_id: int, password_hash: str) -> uuid.UUID | None:
    """The device id in `token` if this service issued it to this user under this password hash, else None."""
    match = _TOKEN.fullmatch(token or "")
    if match is None or int(match[1]) != user_id:
        return None
    if not hmac.compare_digest(match[3], _mac(match[0].rpartition(".")[0], password_hash)):
        return None
    return uuid.UUID(match[2])


def _mac(payload: str, password_hash: str) -> str:
    message = f"{payload}\0{password_hash}".encode()
    digest = hmac.new(_key(current_app.config["SIGNING_KEYS"].secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@functools.cache
def _key(secret: bytes) -> bytes:
    # A key of its own, so that a device token's MAC is never a MAC of anything else the secret signs.
    if not secret:
        raise RuntimeError("SigningKeys.secret is empty: device tokens would be forgeable")
    return hmac.new(secret, b"tokenservice device tokens", hashlib.sha256).digest()
