"""Tokens with a good signature but claims of the wrong shape: a 401 invalid_token everywhere, never a 500 or a pass.

These are minted with the service's own key, as any service that verifies
HS256 tokens could.
"""

import uuid

import pytest
from helpers import TOKEN_GUARDS, api_routes, assert_refused, call, claims_of, forge, now

from tokenservice.web import guards

SID = str(uuid.uuid4())
ODD_CLAIMS = {
    "sid-number": {"sid": 12345},
    "sid-list": {"sid": [SID]},
    "sid-not-uuid": {"sid": "not-a-uuid"},
    "sid-braces": {"sid": "{" + SID + "}"},
    "sid-no-dashes": {"sid": SID.replace("-", "")},
    "sid-missing": {"sid": None},
    "jti-number": {"jti": 7},
    "jti-missing": {"jti": None},
    "sub-thirty-digits": {"sub": "1" * 30},
    "sub-number": {"sub": 1},
    "sub-negative": {"sub": "-1"},
    "sub-zero": {"sub": "0"},
    "sub-leading-zero": {"sub": "01"},
    "sub-space": {"sub": " 1"},
    "type-missing": {"type": None},
    "type-bogus": {"type": "bogus"},
    "type-list": {"type": ["access"]},
    "exp-missing": {"exp": None},
    "exp-string": {"exp": "soon"},
    "exp-true": {"exp": True},
    "exp-infinity": {"exp": float("inf")},
    "nbf-string": {"nbf": "now"},
    "iat-list": {"iat": [1]},
}


@pytest.fixture(params=list(ODD_CLAIMS.values()), ids=list(ODD_CLAIMS))
def odd(request):
    return request.param


def test_on_every_guarded_route(app, client, admin, odd):
    access, refresh = forge(admin.claims, **odd), forge(claims_of(admin.refresh_token), **odd)
    routes = api_routes(app, TOKEN_GUARDS)
    assert len(routes) == 24
    for method, path, guard in routes:
        assert_refused(call(client, method, path, refresh if guard is guards.REFRESH_TOKEN else access))


def test_on_the_refresh_grant_and_logout(client, auth, alice, odd):
    assert_refused(auth.grant(forge(claims_of(alice.refresh_token), **odd)))
    expired = forge(alice.claims, **{"exp": now() - 10, **odd})
    assert_refused(call(client, "POST", "/logout", expired))
    # None of them ended the real session.
    assert client.get("/me", headers=alice.headers).status_code == 200


def test_the_claims_of_a_real_token_pass(client, alice):
    """The control: the same routes take the tokens as issued."""
    assert client.get("/me", headers=alice.headers).status_code == 200
    assert call(client, "POST", "/logout", forge(alice.claims, exp=now() - 10)).status_code == 204
