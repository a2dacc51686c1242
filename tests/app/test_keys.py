"""RS256 and ES256: key pairs checked at start, a kid on every token, the JWKS, rotation, and key confusion refused.

The key pairs (`pairs`) and the algorithm (`alg`) are conftest.py's fixtures; servers/test_keys_served.py runs
docs/keys.md's verifying code against gunicorn across a rotation.
"""

import base64
import hashlib
import hmac
import json

import jwt as pyjwt
import pytest
from helpers import assert_refused, bearer, claims_of, forge

from tokenservice.config import ConfigError
from tokenservice.tokens import key_pairs
from tokenservice.tokens.key_pairs import thumbprint

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


def hmac_token(claims: dict, secret: bytes, header: dict) -> str:
    """An HS256 token by hand: PyJWT itself refuses to use a public key as an HMAC secret."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(signature)}"


def keyed(make_app, pairs, alg, index=0, **environ):
    private, public, _ = pairs[alg][index]
    return make_app(JWT_ALGORITHM=alg, JWT_PRIVATE_KEY=private, JWT_PUBLIC_KEY=public, **environ)


def test_tokens_carry_the_kid_and_verify_with_nothing_but_the_jwks(make_app, pairs, alg, auth):
    auth.add_user("alice")
    client = keyed(make_app, pairs, alg).test_client()
    login = auth.login(client=client)
    header = pyjwt.get_unverified_header(login.access_token)
    assert (header["alg"], header["kid"]) == (alg, pairs[alg][0][2])
    assert pyjwt.get_unverified_header(login.refresh_token)["kid"] == header["kid"]
    key_set = client.get("/.well-known/jwks.json")
    assert key_set.status_code == 200
    assert key_set.headers["Cache-Control"] == "public, max-age=300"
    (jwk,) = key_set.json["keys"]
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (header["kid"], alg, "sig")
    assert not PRIVATE_MEMBERS & set(jwk)
    public = pyjwt.PyJWK(jwk)
    assert pyjwt.decode(login.access_token, public.key, algorithms=[alg])["sub"] == str(login.id)
    assert client.get("/me", headers=login.headers).status_code == 200


def test_the_kid_is_the_rfc_7638_thumbprint():
    """RFC 7638 section 3.1's example key and its thumbprint."""
    jwk = {
        "kty": "RSA",
        "e": "AQAB",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJE"
            "CPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Q"
            "vzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6"
            "WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        ),
    }
    assert thumbprint(pyjwt.PyJWK(jwk).key) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_hs256_has_no_jwks(client):
    assert client.get("/.well-known/jwks.json").status_code == 404


def test_only_the_configured_algorithm_is_accepted(make_app, pairs, alg, auth):
    auth.add_user("alice")
    client = keyed(make_app, pairs, alg).test_client()
    login = auth.login(client=client)
    kid = pairs[alg][0][2]
    claims = claims_of(login.access_token)
    public_pem = pairs[alg][0][1]
    other = "ES256" if alg == "RS256" else "RS256"
    attempts = {
        # Key confusion: the public key (which anyone may fetch) as an HMAC secret.
        "public-key-as-hmac-secret": hmac_token(claims, public_pem.encode(), {"alg": "HS256", "kid": kid}),
        "tests-secret": forge(claims, headers={"kid": kid}),
        "alg-none": forge(claims, key=None, algorithm="none", headers={"kid": kid}),
        "other-algorithm": pyjwt.encode(claims, pairs[other][0][0], algorithm=other, headers={"kid": kid}),
        "unknown-kid": pyjwt.encode(claims, pairs[alg][1][0], algorithm=alg, headers={"kid": pairs[alg][1][2]}),
        "no-kid": pyjwt.encode(claims, pairs[alg][0][0], algorithm=alg),
    }
    for name, token in attempts.items():
        assert_refused(client.get("/me", headers=bearer(token))), name


def test_a_rotation_logs_nobody_out(make_app, pairs, alg, auth):
    auth.add_user("alice")
    before = auth.login(client=keyed(make_app, pairs, alg).test_client())
    old_public, new_kid = pairs[alg][0][1], pairs[alg][1][2]
    rotated = keyed(make_app, pairs, alg, index=1, JWT_PREVIOUS_PUBLIC_KEYS=old_public).test_client()
    assert rotated.get("/me", headers=before.headers).status_code == 200
    refreshed = auth.refresh(before.refresh_token, client=rotated)
    assert refreshed.status_code == 200
    assert pyjwt.get_unverified_header(refreshed.json["refresh_token"])["kid"] == new_kid
    assert pyjwt.get_unverified_header(refreshed.json["access_token"])["kid"] == new_kid
    kids = [jwk["kid"] for jwk in rotated.get("/.well-known/jwks.json").json["keys"]]
    assert kids == [new_kid, pairs[alg][0][2]]
    # Once the old key is dropped from the list, what it signed is refused.
    dropped = keyed(make_app, pairs, alg, index=1).test_client()
    assert_refused(dropped.get("/me", headers=before.headers))


def test_issuer_and_audience_hold_under_asymmetric_keys(make_app, pairs, alg, auth):
    auth.add_user("alice")
    settings = {"JWT_ISSUER": "https://auth.example.com", "JWT_AUDIENCE": "example-api"}
    client = keyed(make_app, pairs, alg, **settings).test_client()
    login = auth.login(client=client)
    assert (login.claims["iss"], login.claims["aud"]) == ("https://auth.example.com", "example-api")
    wrong = pyjwt.encode(
        {**login.claims, "aud": "another-api"}, pairs[alg][0][0], algorithm=alg, headers={"kid": pairs[alg][0][2]}
    )
    assert_refused(client.get("/me", headers=bearer(wrong)))
    key_set = client.get("/.well-known/jwks.json").json
    decoded = pyjwt.decode(
        login.access_token,
        pyjwt.PyJWK(key_set["keys"][0]).key,
        algorithms=[alg],
        issuer="https://auth.example.com",
        audience="example-api",
    )
    assert decoded["sub"] == str(login.id)


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"JWT_PRIVATE_KEY": None}, "JWT_PRIVATE_KEY is required"),
        ({"JWT_PUBLIC_KEY": None}, "JWT_PUBLIC_KEY is required"),
        ({"JWT_PUBLIC_KEY": "other"}, "JWT_PUBLIC_KEY does not match JWT_PRIVATE_KEY"),
        ({"JWT_PRIVATE_KEY": "/nonexistent/key.pem"}, "JWT_PRIVATE_KEY is neither PEM text nor a readable file"),
        ({"JWT_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"}, "KEY is not"),
        ({"JWT_PRIVATE_KEY": "wrong-type"}, "JWT_PRIVATE_KEY must be"),
        ({"JWT_PREVIOUS_PUBLIC_KEYS": "no key in here"}, "JWT_PREVIOUS_PUBLIC_KEYS"),
        ({"JWT_ALGORITHM": "HS512"}, "JWT_ALGORITHM must be HS256, RS256 or ES256"),
    ],
)
def test_a_wrong_key_configuration_stops_the_app(make_app, pairs, alg, change, variable):
    private, public, _ = pairs[alg][0]
    other = "ES256" if alg == "RS256" else "RS256"
    substitutes = {"other": pairs[alg][1][1], "wrong-type": pairs[other][0][0]}
    environ = {"JWT_ALGORITHM": alg, "JWT_PRIVATE_KEY": private, "JWT_PUBLIC_KEY": public}
    environ.update({name: substitutes.get(value, value) for name, value in change.items()})
    with pytest.raises(ConfigError, match=variable):
        make_app(**environ)


def test_keys_from_files_and_escaped_newlines(make_app, pairs, tmp_path, auth):
    private, public, kid = pairs["ES256"][0]
    (tmp_path / "private.pem").write_text(private)
    app = make_app(
        JWT_ALGORITHM="ES256", JWT_PRIVATE_KEY=str(tmp_path / "private.pem"), JWT_PUBLIC_KEY=public.replace("\n", "\\n")
    )
    auth.add_user("alice")
    assert pyjwt.get_unverified_header(auth.login(client=app.test_client()).access_token)["kid"] == kid


def test_generate_writes_a_pair_and_never_overwrites(runner, tmp_path, make_app, auth, monkeypatch):
    result = runner.invoke(args=["keys", "generate", "--alg", "ES256", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    private = next(tmp_path.glob("*-private.pem"))
    public = next(tmp_path.glob("*-public.pem"))
    assert oct(private.stat().st_mode & 0o777) == "0o600"
    assert "JWT_PREVIOUS_PUBLIC_KEYS" in result.output and f"JWT_PRIVATE_KEY={private}" in result.output
    auth.add_user("alice")
    app = make_app(JWT_ALGORITHM="ES256", JWT_PRIVATE_KEY=str(private), JWT_PUBLIC_KEY=str(public))
    assert auth.login(client=app.test_client()).access_token
    before = private.read_bytes()
    public.unlink()  # a pair whose public half is gone: the private half must still not be overwritten
    kid = private.name.removeprefix("es256-").removesuffix("-private.pem")  # base64url: may hold a "-"
    monkeypatch.setattr(key_pairs, "generate", lambda algorithm: (b"new private", b"new public", kid + "x" * 20))
    again = runner.invoke(args=["keys", "generate", "--alg", "ES256", "--dir", str(tmp_path)])
    assert again.exit_code == 1 and "exists already" in again.output
    assert private.read_bytes() == before
