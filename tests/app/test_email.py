"""E-mail addresses: set at registration, by their owner (with the password) or by an admin; verified by a mailed link.

The mails go through the real outbox to a real SMTP server (smtp_server.py).
"""

import pytest
from helpers import PASSWORD, assert_error
from smtp_server import html_of, text_of, token_in
from sqlalchemy import update

from tokenservice.storage.models import LinkToken


def verify(client, token):
    return client.post("/email/verify", json={"token": token})


def me(client, login) -> dict:
    return client.get("/me", headers=login.headers).json


def test_registering_with_an_address_mails_it_a_link_that_verifies_it_once(client, auth, outbox):
    response = auth.register("alice", email="Alice@Example.com")
    assert response.status_code == 201
    assert (response.json["email"], response.json["email_verified"]) == ("Alice@example.com", False)
    outbox.send()
    (mail,) = outbox.mailbox.wait_for(1, to="Alice@example.com")
    assert mail["Subject"] == "Confirm your e-mail address"
    assert verify(client, token_in(mail)).status_code == 204
    assert me(client, auth.login("alice"))["email_verified"] is True
    assert_error(verify(client, token_in(mail)), 400, "invalid_link")


def test_addresses_are_unique_without_regard_to_case(auth):
    assert auth.register("alice", email="alice@example.com").status_code == 201
    response = auth.register("bob", email="ALICE@example.com")
    assert_error(response, 409, "email_taken")
    assert response.json["fields"] == {"email": "Already in use."}


@pytest.mark.parametrize(
    "address",
    [
        "not an address",
        "a@b",
        "alice@example.com\r\nBcc: victim@example.com",
        "<alice@example.com>",
        "a" * 250 + "@x.io",
    ],
)
def test_an_address_must_be_one(auth, address):
    response = auth.register("alice", email=address)
    assert_error(response, 400, "invalid_request")
    assert set(response.json["fields"]) == {"email"}


def test_changing_the_address_needs_the_password_mails_the_new_one_and_tells_the_old(client, auth, outbox):
    auth.add_user("alice", email="old@example.com", email_verified=True)
    login = auth.login("alice")
    missing = client.patch("/me", json={"email": "new@example.com"}, headers=login.headers)
    assert_error(missing, 400, "invalid_request")
    assert set(missing.json["fields"]) == {"current_password"}
    wrong = client.patch("/me", json={"email": "new@example.com", "current_password": "wrong"}, headers=login.headers)
    assert_error(wrong, 400, "invalid_request")
    assert set(wrong.json["fields"]) == {"current_password"}

    body = {"email": "new@example.com", "current_password": PASSWORD}
    changed = client.patch("/me", json=body, headers=login.headers)
    assert changed.status_code == 200
    assert (changed.json["email"], changed.json["email_verified"]) == ("new@example.com", False)
    outbox.send()
    outbox.mailbox.wait_for(2)
    (notice,) = outbox.mailbox.messages(to="old@example.com")
    assert notice["Subject"] == "Your e-mail address was changed"
    (link,) = outbox.mailbox.messages(to="new@example.com")
    assert verify(client, token_in(link)).status_code == 204
    assert me(client, login)["email_verified"] is True


def test_a_name_needs_no_password_and_the_same_address_is_no_change(client, auth, outbox):
    auth.add_user("alice", email="alice@example.com", email_verified=True)
    login = auth.login("alice")
    response = client.patch("/me", json={"name": "Alice", "email": "alice@example.com"}, headers=login.headers)
    assert response.status_code == 200 and response.json["email_verified"] is True
    assert outbox.send()["sent"] == 0


def test_a_link_for_an_old_address_does_not_verify_the_new_one(client, auth, outbox):
    auth.register("alice", email="first@example.com")
    login = auth.login("alice")
    body = {"email": "second@example.com", "current_password": PASSWORD}
    assert client.patch("/me", json=body, headers=login.headers).status_code == 200
    outbox.send()
    (first,) = outbox.mailbox.wait_for(1, to="first@example.com")
    assert_error(verify(client, token_in(first)), 400, "invalid_link")
    assert me(client, login)["email_verified"] is False


def test_switching_addresses_counts_against_the_mail_limit(limited_app, auth, outbox):
    """Alternating between a victim's address and another mails the victim at most MAIL_RATE_LIMIT links."""
    auth.add_user("mallory")
    app = limited_app({"MAIL_RATE_LIMIT": "2 per hour", "PASSWORD_CHANGE_RATE_LIMIT": "100 per minute"})
    with app.test_client() as own:
        login = auth.login("mallory", client=own)
        statuses = []
        for address in ["victim@example.com", "other@example.com"] * 2:
            body = {"email": address, "current_password": PASSWORD}
            statuses.append(own.patch("/me", json=body, headers=login.headers).status_code)
    assert statuses == [200, 200, 429, 200]  # the last: the account still has the other address, no change
    outbox.send()
    assert len(outbox.mailbox.wait_for(2)) == 2


def test_the_owner_may_ask_for_the_link_again_within_the_limit(client, limited_app, auth, outbox):
    auth.add_user("alice", email="alice@example.com")
    app = limited_app({"MAIL_RATE_LIMIT": "2 per hour"})
    with app.test_client() as own:
        login = auth.login("alice", client=own)
        answers = [own.post("/me/email/verify", headers=login.headers) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    assert answers[2].json["error"] == "rate_limited" and int(answers[2].headers["Retry-After"]) > 0
    outbox.send()
    assert len(outbox.mailbox.wait_for(2)) == 2


def test_asking_for_a_link_without_an_address_or_once_verified(client, auth):
    auth.add_user("alice")
    assert_error(client.post("/me/email/verify", headers=auth.login("alice").headers), 409, "no_email_address")
    auth.add_user("bob", email="bob@example.com", email_verified=True)
    assert_error(client.post("/me/email/verify", headers=auth.login("bob").headers), 409, "email_already_verified")


def test_an_expired_verification_link(client, auth, outbox, database):
    auth.register("alice", email="alice@example.com")
    outbox.send()
    (mail,) = outbox.mailbox.wait_for(1)
    database.execute(update(LinkToken).values(expires_at=LinkToken.created_at))
    assert_error(verify(client, token_in(mail)), 400, "invalid_link")


def test_an_admin_sees_and_sets_an_address(client, auth, admin, outbox):
    user_id = auth.add_user("alice")
    response = client.patch(f"/users/{user_id}", json={"email": "alice@example.com"}, headers=admin.headers)
    assert response.status_code == 200
    assert (response.json["email"], response.json["email_verified"]) == ("alice@example.com", False)
    assert client.get(f"/users/{user_id}", headers=admin.headers).json["email"] == "alice@example.com"
    outbox.send()
    outbox.mailbox.wait_for(1, to="alice@example.com")


def test_a_user_may_remove_their_address(client, auth):
    auth.add_user("alice", email="alice@example.com", email_verified=True)
    login = auth.login("alice")
    body = {"email": None, "current_password": PASSWORD}
    response = client.patch("/me", json=body, headers=login.headers)
    assert (response.json["email"], response.json["email_verified"]) == (None, False)


def test_names_reach_no_header_and_no_mail_at_all(client, auth, outbox):
    """A display name is free text: with a line break and a link it would put a stranger's link first."""
    name = 'Mallory <script>alert(1)</script>\r\nBcc: victim@example.com\r\n\r\nhttps://evil.example/?token=x "&'
    assert auth.register("mallory", email="mallory@example.com", name=name).status_code == 201
    outbox.send()
    (mail,) = outbox.mailbox.wait_for(1)
    assert outbox.mailbox.received[0][0] == ["mallory@example.com"]  # the envelope: one recipient
    assert "Bcc" not in mail and "victim" not in "".join(str(value) for value in mail.values())
    for part in (text_of(mail), html_of(mail)):
        assert "evil" not in part and "script" not in part and "Mallory" not in part
        assert "mallory" in part  # the username
    assert token_in(mail) and "evil" not in text_of(mail).split("http", 1)[1].split()[0]


def test_without_a_mail_server_an_address_cannot_be_set(make_app, auth):
    no_mail = make_app(SMTP_URL=None, PUBLIC_URL=None)
    with no_mail.test_client() as own:
        assert_error(auth.register("alice", email="alice@example.com", client=own), 503, "mail_unavailable")
        assert auth.register("alice", client=own).status_code == 201  # without one, as before


def test_require_verified_email_refuses_unverified_logins_after_the_password_and_mails_a_link(make_app, auth, outbox):
    strict = make_app(REQUIRE_VERIFIED_EMAIL="true")
    auth.add_user("alice", email="alice@example.com")
    auth.add_user("bob")
    auth.add_user("carol", email="carol@example.com", email_verified=True)
    with strict.test_client() as own:
        assert_error(auth.token("alice", "wrong password", client=own), 401, "invalid_credentials")
        assert outbox.send()["sent"] == 0  # nothing for whoever does not hold the password
        assert_error(auth.token("alice", client=own), 403, "email_not_verified")
        assert_error(auth.token("bob", client=own), 403, "email_not_verified")
        auth.login("carol", client=own)
        # The refused user cannot log in to ask for the link: the refusal mailed one.
        outbox.send()
        (mail,) = outbox.mailbox.wait_for(1, to="alice@example.com")
        assert own.post("/email/verify", json={"token": token_in(mail)}).status_code == 204
        auth.login("alice", client=own)
