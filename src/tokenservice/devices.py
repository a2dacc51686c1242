"""Device tokens: how a client that has logged in before proves it, so that strangers' guesses cannot lock it out.

A successful password login answers with a `device_token` bound to that
user; a later POST /token that sends it back is counted in that device's own
allowance of failed logins (login_failures.py), not with the strangers'.

It is not a credential: it logs nobody in and opens no session, and it is
not a JWT, so no service that trusts this service's tokens can mistake it
for one. It is signed with HMAC-SHA256 under a key derived from the signing
key, so every worker and instance can check it without storing it, and it
stops being recognised when the signing key changes (the device then counts
as a stranger until its next successful login). A token that is not one of
ours, or names another user, is simply not recognised.
"""

import base64
import functools
import hashlib
import hmac
import re
import uuid
from dataclasses import dataclass, field

from flask import current_app

VERSION = "dv1"
_TOKEN = re.compile(rf"{VERSION}\.([1-9][0-9]{{0,9}})\.([0-9a-f]{{32}})\.([A-Za-z0-9_-]{{43}})")


@dataclass(frozen=True)
class Device:
    user_id: int
    device_id: uuid.UUID = field(default_factory=uuid.uuid4)


def device_token(device: Device) -> str:
    payload = f"{VERSION}.{device.user_id}.{device.device_id.hex}"
    return f"{payload}.{_mac(payload)}"


def read_device_token(token: str | None) -> Device | None:
    """The device a device_token names, or None when it is missing or not one this service signed."""
    match = _TOKEN.fullmatch(token or "")
    if match is None:
        return None
    payload = token.rpartition(".")[0]
    if not hmac.compare_digest(match[3], _mac(payload)):
        return None
    return Device(int(match[1]), uuid.UUID(match[2]))


def device_for_login(presented: Device | None, user_id: int) -> Device:
    """The device a successful login answers for: the one it presented, if that user's, else a new one."""
    return presented if presented is not None and presented.user_id == user_id else Device(user_id)


def _mac(payload: str) -> str:
    digest = hmac.new(_key(current_app.config["SIGNING_KEYS"].secret), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@functools.cache
def _key(secret: bytes) -> bytes:
    # A key of its own, so that a device token's MAC is never a MAC of anything else the secret signs.
    return hmac.new(secret, b"tokenservice device tokens", hashlib.sha256).digest()
