"""RS256 and ES256: key pairs checked at start, a kid on every token, the JWKS, rotation, and key confusion refused."""

import base64
import hashlib
import hmac
import json
import re

import jwt as pyjwt
import pytest
from deployment import deploy_env, exchange, released_schema, web_server
from helpers import PASSWORD, ROOT, assert_refused, bearer, claims_of, forge

from tokenservice import key_pairs
from tokenservice.config import ConfigError
from tokenservice.key_pairs import generate, thumbprint

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}
KEYS_PAGE = (ROOT / "docs" / "keys.md").read_text()


@pytest.fixture(scope="module")
def pairs():
    """Two key pairs per algorithm, as PEM text: {alg: [(private, public, kid), ...]}."""
    made = {alg: [generate(alg) for _ in range(2)] for alg in ("RS256", "ES256")}
    return {alg: [(p.decode(), q.decode(), kid) for p, q, kid in pairs] for alg, pairs in made.items()}


@pytest.fixture(params=["RS256", "ES256"])
def alg(request):
    return request.param


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


def documented_verifier(jwks_url: str) -> dict:
    """The verifying code for another service in docs/keys.md, pointed at the test server."""
    section = KEYS_PAGE[KEYS_PAGE.index("## Verifying tokens in another service") :]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    block = re.sub(r'^JWKS_URL = ".*"$', f'JWKS_URL = "{jwks_url}"', block, flags=re.M)
    namespace = {}
    exec(compile(block, "docs/keys.md", "exec"), namespace)  # noqa: S102 (the repository's own docs)
    return namespace


@pytest.fixture(scope="module")
def keyed_url(app, database_url):
    return released_schema(app, database_url, "jwks_check", users=("alice",))


def jwks_fetches(output: list[str]) -> int:
    """How many times a served app answered GET /.well-known/jwks.json: its JSON request log lines, counted."""
    lines = [json.loads(line) for line in output[0].splitlines() if line.startswith("{")]
    return sum(
        (line["event"], line.get("method"), line.get("path")) == ("request", "GET", "/.well-known/jwks.json")
        for line in lines
    )


def held_kids(jwks: pyjwt.PyJWKClient) -> list[str] | None:
    """The kids of the JWK set the client holds and still counts as fresh (None: nothing held, or expired)."""
    held = jwks.jwk_set_cache.get()
    return held and [key.key_id for key in held.keys]


def wait_out_the_cache(jwks: pyjwt.PyJWKClient) -> None:
    """What waiting the client's cache lifetime (`lifespan`, 300 s by default) does to it, without the wait: the
    set it holds is dated that long ago, so it counts as expired and the next verification fetches the set."""
    cache = jwks.jwk_set_cache
    cache.jwk_set_with_timestamp.timestamp -= cache.lifespan + 1
    assert held_kids(jwks) is None


def test_another_service_verifies_with_the_jwks_across_a_rotation(keyed_url, pairs, alg):
    """docs/keys.md's two-step rotation, seen by one client that runs that page's code once, with PyJWKClient's
    defaults: it keeps the set 300 s, and for 30 s after a fetch does not fetch again for a kid it has not seen,
    so the new key must be published, and held, before it signs."""
    (old_private, old_public, old_kid), (new_private, new_public, new_kid) = pairs[alg]
    settings = {"JWT_ALGORITHM": alg, "JWT_ISSUER": "https://auth.example.com", "JWT_AUDIENCE": "example-api"}
    alice = {"username": "alice", "password": PASSWORD}
    first = deploy_env(keyed_url, JWT_PRIVATE_KEY=old_private, JWT_PUBLIC_KEY=old_public, **settings)
    # Every restart listens where the first server did: one URL, one client, as another service would have.
    # web_server has stopped the last server (its workers too) before the next binds; gunicorn binds with
    # SO_REUSEADDR, and exits, failing the test, if something else holds the port. Each server's own log
    # counts the client's fetches, so none can go elsewhere unnoticed.
    documented = documented_verifier(f"http://127.0.0.1:{first['PORT']}/.well-known/jwks.json")
    verify = documented["verify"]
    (jwks,) = [value for value in documented.values() if isinstance(value, pyjwt.PyJWKClient)]
    not_access = "a refresh token is not an access token"

    # Before: the old pair signs, and only its public key is published.
    with web_server(first) as (port, output):
        old = exchange(port, "POST", "/token", alice)[2]
        assert pyjwt.get_unverified_header(old["access_token"])["kid"] == old_kid
        assert verify(old["access_token"])["sub"] == str(old["user_id"])
        with pytest.raises(pyjwt.InvalidTokenError, match=not_access):
            verify(old["refresh_token"])
    assert jwks_fetches(output) == 1  # the refresh token's kid was among the keys held
    assert held_kids(jwks) == [old_kid]

    # Step 1: the new public key is published (in JWT_PREVIOUS_PUBLIC_KEYS); the old pair still signs.
    published = {"JWT_PRIVATE_KEY": old_private, "JWT_PUBLIC_KEY": old_public, "JWT_PREVIOUS_PUBLIC_KEYS": new_public}
    with web_server(deploy_env(keyed_url, PORT=first["PORT"], **published, **settings)) as (port, output):
        signed = exchange(port, "POST", "/token", alice)[2]
        assert pyjwt.get_unverified_header(signed["access_token"])["kid"] == old_kid
        assert verify(old["access_token"])["sub"] == str(old["user_id"])
        assert held_kids(jwks) == [old_kid]  # served from the set it holds: nothing fetched
        wait_out_the_cache(jwks)
        assert verify(old["access_token"])["sub"] == str(old["user_id"])
        assert held_kids(jwks) == [old_kid, new_kid]  # fetched again, once its set had expired
    assert jwks_fetches(output) == 1

    # Step 2: the new pair signs; the old public key stays published (in JWT_PREVIOUS_PUBLIC_KEYS). The client
    # fetched seconds ago, so it would fetch nothing for a kid it has not seen: it needs none.
    rotated = {"JWT_PRIVATE_KEY": new_private, "JWT_PUBLIC_KEY": new_public, "JWT_PREVIOUS_PUBLIC_KEYS": old_public}
    with web_server(deploy_env(keyed_url, PORT=first["PORT"], **rotated, **settings)) as (port, output):
        new = exchange(port, "POST", "/token", alice)[2]
        assert pyjwt.get_unverified_header(new["access_token"])["kid"] == new_kid
        assert verify(new["access_token"])["sub"] == str(new["user_id"])
        assert verify(old["access_token"])["sub"] == str(old["user_id"])  # signed before the rotation
        with pytest.raises(pyjwt.InvalidTokenError, match=not_access):
            verify(new["refresh_token"])
        # A logout: this service refuses the token at once; another one sees it only when it expires.
        assert exchange(port, "POST", "/logout", headers=bearer(new["access_token"]))[0] == 204
        assert exchange(port, "GET", "/me", headers=bearer(new["access_token"]))[0] == 401
        assert verify(new["access_token"])["sub"] == str(new["user_id"])
    assert jwks_fetches(output) == 0
    assert held_kids(jwks) == [old_kid, new_kid]
