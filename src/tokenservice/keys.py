"""What tokens are signed with: HS256's secret, or an RS256/ES256 key pair (docs/keys.md).

Read and checked once, at start (config.py): a missing, unreadable or
mismatched key stops the app with a sentence that names the variable. With
RS256 or ES256 every token's header carries a `kid`, the RFC 7638 thumbprint
of its public key, and a token is verified with the public key its `kid`
names: the current one, or one listed in JWT_PREVIOUS_PUBLIC_KEYS, so a
rotation logs nobody out. GET /.well-known/jwks.json publishes them all.

Key pairs are loaded by key_pairs.py, which needs cryptography: nothing here
does, so that an HS256 worker never loads it (src/wsgi.py).
"""

from dataclasses import dataclass, field

from .exceptions import InvalidToken

ALGORITHMS = ("HS256", "RS256", "ES256")


class KeySettingError(Exception):
    """A key setting the service refuses to start with (config.py words it as a ConfigError)."""


@dataclass(frozen=True)
class SigningKeys:
    """What tokens are signed with, and what verifies them by `kid` (None: HS256, which has no kid)."""

    algorithm: str
    signing_key: object  # HS256: the secret; else the private key
    kid: str | None
    verification_keys: dict = field(default_factory=dict)  # kid -> key; the current key first
    # What the service's own MACs are keyed from (devices.py): HS256's secret, or the private key's DER.
    secret: bytes = b""

    def verification_key(self, kid):
        """The key that verifies a token whose header says `kid`, or InvalidToken for a kid we never issued."""
        try:
            return self.verification_keys[kid]
        except (KeyError, TypeError):  # unknown, missing, or not a string at all
            raise InvalidToken() from None

    def jwks(self) -> dict | None:
        """The public keys as a JSON Web Key Set, or None with HS256 (no public key to publish)."""
        if self.kid is None:
            return None
        from .key_pairs import public_jwk  # a key pair is loaded, and cryptography with it

        return {
            "keys": [
                {**public_jwk(key), "kid": kid, "alg": self.algorithm, "use": "sig"}
                for kid, key in self.verification_keys.items()
            ]
        }


def hs256(secret: str) -> SigningKeys:
    return SigningKeys("HS256", secret, None, {None: secret}, secret.encode())
