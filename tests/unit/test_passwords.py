import nacl.exceptions
import nacl.pwhash
import pytest
from helpers import record_argon2_checks
from werkzeug.security import generate_password_hash

from tokenservice.rules import passwords
from tokenservice.rules.exceptions import HashingBusy
from tokenservice.rules.passwords import (
    EXPIRED_HASH,
    common_passwords,
    hash_password,
    password_problem,
    verify_password,
)


def test_hashes_are_argon2id_at_owasp_parameters():
    stored = hash_password("a fine password")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored, "a fine password") == (True, False)
    assert verify_password(stored, "another password") == (False, False)


def test_hashes_stored_before_libsodium_still_log_in_and_are_kept():
    """Made by argon2-cffi, which hashed passwords here until libsodium did (same parameters, same format)."""
    stored = "$argon2id$v=19$m=19456,t=2,p=1$vqsRT8P65JW2s5a/2ONrnA$3Q3VfoPZLX0lCRi4mdXl9SdaPchXPuGfvL2ROGXq8ns"
    assert verify_password(stored, "a password from before") == (True, False)
    assert verify_password(stored, "a password from after") == (False, False)


def test_hashes_are_salted():
    assert hash_password("same password") != hash_password("same password")


@pytest.mark.parametrize("method", ["pbkdf2:sha256", "scrypt"])
def test_werkzeug_hashes_verify_and_ask_to_be_rehashed(method):
    stored = generate_password_hash("legacy password", method=method)
    assert verify_password(stored, "legacy password") == (True, True)
    assert verify_password(stored, "wrong password")[0] is False


def test_weaker_argon2_hashes_ask_to_be_rehashed():
    weak = nacl.pwhash.argon2id.str(b"old password", opslimit=1, memlimit=8 * 1024 * 1024).decode()
    assert verify_password(weak, "old password") == (True, True)
    assert verify_password(weak, "wrong password") == (False, False)


@pytest.mark.parametrize("stored", ["not-a-hash", EXPIRED_HASH])
def test_an_unusable_hash_never_verifies_and_costs_a_real_check(monkeypatch, stored):
    """An expired (or garbage) hash answers no as slowly as a real one, so timing does not tell it apart."""
    checked = record_argon2_checks(monkeypatch)
    assert verify_password(stored, "anything") == (False, False)
    assert checked == [stored, passwords._dummy_hash()]  # then a real Argon2id hash, checked in full


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "at least 8"),
        ("x" * 1025, "at most 1024"),
        (" " * 12, "whitespace"),
        ("alice.smith", "same as the username"),
        ("ALICE.SMITH", "same as the username"),
        ("password123", "common"),
        ("qwerty123", "common"),
        ("Password123", "common"),
    ],
)
def test_password_rules(password, problem):
    assert problem in password_problem(password, username="alice.smith")


@pytest.mark.parametrize("password", ["correct horse battery staple", "x" * 1024, "8chars!z"])
def test_good_passwords_pass(password):
    assert password_problem(password, username="alice") is None


def test_the_common_list_is_long_enough():
    assert len(common_passwords()) >= 3000


def test_under_gevent_hashing_runs_off_the_event_loop_at_a_lower_priority(monkeypatch):
    """What gunicorn's gevent worker gets: a hashing thread of its own, niced, so the loop goes on serving."""
    import os
    import threading

    assert passwords.under_gevent() is False  # in the tests, as under flask run and the CLI
    monkeypatch.setattr(passwords, "under_gevent", lambda: True)
    where = passwords._off_the_event_loop(lambda: (threading.get_ident(), os.getpriority(os.PRIO_PROCESS, 0)))
    assert where[0] != threading.get_ident()
    assert where[1] == passwords.HASH_NICE
    stored = hash_password("a fine password")
    assert verify_password(stored, "a fine password") == (True, False)


def test_the_hashing_queue_refuses_at_once_when_every_place_is_taken():
    admission = passwords.Admission(2)
    with admission.turn(), admission.turn():
        with pytest.raises(HashingBusy) as refused:
            with admission.turn():
                pass  # never reached
        assert refused.value.retry_after == 1
    with admission.turn():  # places come back when requests finish, refused or not
        assert admission.taken == 1
    assert admission.taken == 0


def test_under_gevent_a_hash_whose_turn_comes_too_late_is_not_done(monkeypatch):
    """A hash that waited HASH_WAIT_SECONDS for the hashing thread is refused, not computed late."""
    monkeypatch.setattr(passwords, "under_gevent", lambda: True)
    monkeypatch.setattr(passwords, "HASH_WAIT_SECONDS", -1.0)  # every turn comes too late
    computed = []
    with pytest.raises(HashingBusy):
        passwords._off_the_event_loop(computed.append, "never")
    assert computed == []


def test_under_gevent_an_error_of_the_hash_is_raised_in_the_request(monkeypatch):
    monkeypatch.setattr(passwords, "under_gevent", lambda: True)
    with pytest.raises(nacl.exceptions.CryptPrefixError):
        passwords._off_the_event_loop(passwords.argon2_matches, "!expired", "a password")
