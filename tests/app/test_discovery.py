"""The discovery documents (RFC 8414), checked by Authlib's own metadata validator and against the tokens."""

import jwt as pyjwt
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from helpers import assert_error

ISSUER = "https://auth.example.com"
PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


def validated(document: dict) -> None:
    """Authlib's validator on every field; its one complaint must be the empty response_types_supported.

    RFC 8414 requires the field, and this service has no authorization
    endpoint, so no response type is true of it: the list is empty, which
    Authlib refuses. Every other field passes as it stands.
    """
    metadata = AuthorizationServerMetadata(document)
    for key in metadata.REGISTRY_KEYS:
        check = getattr(metadata, f"validate_{key}")
        if key == "response_types_supported":
            with pytest.raises(ValueError, match="response_types_supported"):
                check()
            assert document["response_types_supported"] == []
        else:
            check()


@pytest.fixture
def rs256_app(make_app, pairs):
    private, public, _ = pairs["RS256"][0]
    return make_app(JWT_ISSUER=ISSUER, JWT_ALGORITHM="RS256", JWT_PRIVATE_KEY=private, JWT_PUBLIC_KEY=public)


def test_both_documents_pass_the_validator_and_agree_with_the_tokens(rs256_app, auth_for):
    client = rs256_app.test_client()
    documents = [client.get(path) for path in PATHS]
    assert all(response.status_code == 200 for response in documents)
    assert documents[0].json == documents[1].json
    assert documents[0].headers["Cache-Control"] == "public, max-age=300"
    document = documents[0].json
    validated(document)
    assert document["issuer"] == ISSUER
    assert document["token_endpoint"] == f"{ISSUER}/token"
    assert document["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert document["introspection_endpoint"] == f"{ISSUER}/introspect"
    assert document["revocation_endpoint"] == f"{ISSUER}/revoke"
    assert document["grant_types_supported"] == ["password", "refresh_token", "client_credentials"]
    assert "authorization_endpoint" not in document  # none: only what is true of this service

    auth = auth_for(rs256_app)
    auth.add_user("alice")
    token = auth.login("alice").access_token
    header, claims = pyjwt.get_unverified_header(token), pyjwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == document["issuer"]
    keys = client.get("/.well-known/jwks.json").json["keys"]
    assert [(key["kid"], key["alg"]) for key in keys if key["kid"] == header["kid"]] == [(header["kid"], "RS256")]


def test_with_hs256_the_documents_have_no_jwks_uri(make_app):
    client = make_app(JWT_ISSUER=ISSUER).test_client()
    document = client.get(PATHS[0]).json
    validated(document)
    assert "jwks_uri" not in document  # no public keys: services verify by introspection, or with the secret


@pytest.mark.parametrize(
    "issuer",
    [None, "tokenservice", "http://auth.example.com", "https://auth.example.com/?x=1", "https://example.com/auth"],
)
def test_no_documents_without_an_issuer_others_can_start_from(make_app, issuer):
    client = make_app(JWT_ISSUER=issuer).test_client()
    for path in PATHS:
        assert_error(client.get(path), 404, "not_found")
