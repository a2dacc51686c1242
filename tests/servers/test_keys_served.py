"""docs/keys.md's verifying code, run as another service would run it, against gunicorn across a key rotation.

The key pairs (`pairs`) and the algorithm (`alg`) are conftest.py's fixtures, shared with app/test_keys.py.
"""

import json
import re

import jwt as pyjwt
import pytest
from deployment import deploy_env, exchange, login, released_schema, web_server
from helpers import ROOT, bearer

KEYS_PAGE = (ROOT / "docs" / "keys.md").read_text()


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
        old = login(port)
        assert pyjwt.get_unverified_header(old["access_token"])["kid"] == old_kid
        assert verify(old["access_token"])["sub"] == str(old["user_id"])
        with pytest.raises(pyjwt.InvalidTokenError, match=not_access):
            verify(old["refresh_token"])
    assert jwks_fetches(output) == 1  # the refresh token's kid was among the keys held
    assert held_kids(jwks) == [old_kid]

    # Step 1: the new public key is published (in JWT_PREVIOUS_PUBLIC_KEYS); the old pair still signs.
    published = {"JWT_PRIVATE_KEY": old_private, "JWT_PUBLIC_KEY": old_public, "JWT_PREVIOUS_PUBLIC_KEYS": new_public}
    with web_server(deploy_env(keyed_url, PORT=first["PORT"], **published, **settings)) as (port, output):
        signed = login(port)
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
        new = login(port)
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
