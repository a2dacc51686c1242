"""RS256 and ES256 key pairs: loaded and checked at start, thumbprinted, generated (docs/keys.md).

KeyPair is the second kind of keys.SigningKeys. This is the service's one
use of cryptography: config.py imports it for JWT_ALGORITHM RS256 or ES256,
cli.py for `flask keys generate`.
"""

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from ..rules.exceptions import InvalidToken
from .keys import KeySettingError

MIN_RSA_BITS = 2048
_PUBLIC_PEM = re.compile(r"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.S)
# RFC 7638: the members of each key type that its thumbprint covers.
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


@dataclass(frozen=True)
class KeyPair:
    """RS256 or ES256: the private key signs; the public keys verify, chosen by the kid in the token's header."""

    algorithm: str
    private_key: object
    kid: str  # the current public key's thumbprint
    verification_keys: dict  # kid -> public key; the current one first
    secret: bytes  # the private key's DER

    def jwt_settings(self) -> dict:
        return {"JWT_SECRET_KEY": None, "JWT_PRIVATE_KEY": self.private_key}

    def token_headers(self) -> dict:
        return {"kid": self.kid}

    def verification_key(self, kid) -> object:
        try:
            return self.verification_keys[kid]
        except (KeyError, TypeError):  # unknown, missing, or not a string at all
            raise InvalidToken() from None

    def jwks(self) -> dict | None:
        return {
            "keys": [
                {**public_jwk(key), "kid": kid, "alg": self.algorithm, "use": "sig"}
                for kid, key in self.verification_keys.items()
            ]
        }


def asymmetric(algorithm: str, *, private: str | None, public: str | None, previous: str | None) -> KeyPair:
    """Load and check a key pair (PEM text or a file path each) and the earlier public keys."""
    if private is None:
        raise KeySettingError(
            f"JWT_PRIVATE_KEY is required with JWT_ALGORITHM={algorithm}: make a key pair with "
            f"`flask keys generate --alg {algorithm}`."
        )
    if public is None:
        raise KeySettingError(
            f"JWT_PUBLIC_KEY is required with JWT_ALGORITHM={algorithm}: the public half of JWT_PRIVATE_KEY."
        )
    private_key = _load(private, "JWT_PRIVATE_KEY", serialization.load_pem_private_key, password=None)
    public_key = _load(public, "JWT_PUBLIC_KEY", serialization.load_pem_public_key)
    _check_type(private_key, algorithm, "JWT_PRIVATE_KEY")
    if _jwk_members(public_key) != _jwk_members(private_key.public_key()):
        raise KeySettingError("JWT_PUBLIC_KEY does not match JWT_PRIVATE_KEY: they must be the two halves of one pair.")
    verification = {thumbprint(public_key): public_key}
    for key in _previous(previous, algorithm) if previous else []:
        verification.setdefault(thumbprint(key), key)
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return KeyPair(algorithm, private_key, thumbprint(public_key), verification, der)


def _previous(value: str, algorithm: str) -> list:
    """JWT_PREVIOUS_PUBLIC_KEYS: PEM public keys one after another, or a file of them."""
    pems = _PUBLIC_PEM.findall(_text(value, "JWT_PREVIOUS_PUBLIC_KEYS"))
    if not pems:
        raise KeySettingError("JWT_PREVIOUS_PUBLIC_KEYS must hold PEM public keys (-----BEGIN PUBLIC KEY-----).")
    keys = [_load(pem, "JWT_PREVIOUS_PUBLIC_KEYS", serialization.load_pem_public_key) for pem in pems]
    for key in keys:
        _check_type(key, algorithm, "JWT_PREVIOUS_PUBLIC_KEYS")
    return keys


def public_jwk(key) -> dict:
    """The public members of a key as a JWK (never a private one)."""
    if isinstance(key, rsa.RSAPublicKey):
        return RSAAlgorithm.to_jwk(key, as_dict=True)
    return ECAlgorithm.to_jwk(key, as_dict=True)


def thumbprint(public_key) -> str:
    """RFC 7638: base64url(SHA-256 of the required members, sorted, as compact JSON)."""
    members = _jwk_members(public_key)
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def _jwk_members(key) -> dict:
    jwk = public_jwk(key)
    return {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}


def _check_type(key, algorithm: str, variable: str) -> None:
    if algorithm == "RS256":
        if not isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
            raise KeySettingError(f"{variable} must be an RSA key of at least {MIN_RSA_BITS} bits for RS256.")
    elif not isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise KeySettingError(f"{variable} must be an elliptic-curve key on P-256 for ES256.")


def _load(value: str, variable: str, loader, **options):
    try:
        return loader(_text(value, variable).encode(), **options)
    except (ValueError, TypeError):
        raise KeySettingError(f"{variable} is not a PEM key, nor a file holding one, that can be read.") from None


def _text(value: str, variable: str) -> str:
    """PEM text as given (literal \\n allowed, as some hosts' settings pages need), or the file it names."""
    value = value.strip()
    if value.startswith("-----BEGIN"):
        return value.replace("\\n", "\n")
    try:
        return Path(value).read_text()
    except OSError:  # not the value in the sentence: it may be a mangled private key
        raise KeySettingError(f"{variable} is neither PEM text nor a readable file.") from None


def generate(algorithm: str) -> tuple[bytes, bytes, str]:
    """A new key pair for `algorithm` (RSA 3072 bits, or P-256) as PEM: (private, public, kid)."""
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "RS256":
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        private_key = ec.generate_private_key(ec.SECP256R1())
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem, thumbprint(private_key.public_key())
