"""What tokens are signed with: HS256's secret, or an RS256/ES256 key pair (docs/keys.md).

Read and checked once, at start (config.py): a missing, unreadable or
mismatched key stops the app with a sentence that names the variable. With
RS256 or ES256 every token's header carries a `kid`, the RFC 7638 thumbprint
of its public key, and a token is verified with the public key its `kid`
names: the current one, or one listed in JWT_PREVIOUS_PUBLIC_KEYS, so a
rotation logs nobody out. GET /.well-known/jwks.json publishes them all.

Two kinds with one interface (SigningKeys): a SharedSecret (HS256), here,
and a KeyPair (RS256, ES256), in key_pairs.py, which imports this module and
never the other way round.
"""

from dataclasses import dataclass
from typing import Protocol

from ..rules.exceptions import InvalidToken

ALGORITHMS = ("HS256", "RS256", "ES256")


class KeySettingError(Exception):
    """A key setting the service refuses to start with (config.py words it as a ConfigError)."""


class SigningKeys(Protocol):
    """What tokens are signed with, and what verifies them."""

    @property
    def algorithm(self) -> str: ...

    @property
    def secret(self) -> bytes:
        """What the service's own MACs are keyed from (rules/devices.py)."""
        ...

    def jwt_settings(self) -> dict:
        """Flask-JWT-Extended's JWT_SECRET_KEY and JWT_PRIVATE_KEY."""
        ...

    def token_headers(self) -> dict:
        """What every token's header adds: its kid, if any."""
        ...

    def verification_key(self, kid) -> object:
        """The key that verifies a token whose header says `kid`, or InvalidToken for a kid we never issued."""
        ...

    def jwks(self) -> dict | None:
        """The public keys as a JSON Web Key Set, or None when there is none to publish."""
        ...


@dataclass(frozen=True)
class SharedSecret:
    """HS256: one secret signs and verifies; tokens carry no kid, and there is nothing to publish."""

    text: str
    algorithm: str = "HS256"

    @property
    def secret(self) -> bytes:
        return self.text.encode()

    def jwt_settings(self) -> dict:
        return {"JWT_SECRET_KEY": self.text, "JWT_PRIVATE_KEY": None}

    def token_headers(self) -> dict:
        return {}

    def verification_key(self, kid) -> object:
        if kid is not None:
            raise InvalidToken()
        return self.text

    def jwks(self) -> dict | None:
        return None
