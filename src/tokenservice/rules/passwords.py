"""Password hashing and the password rules (docs/api.md, "Usernames and passwords")."""

import contextlib
import functools
import gzip
import os
import time
from pathlib import Path

import nacl.pwhash
from nacl.exceptions import CryptPrefixError, InvalidkeyError
from werkzeug.security import check_password_hash

from ..concurrency import under_gevent
from .exceptions import HashingBusy

# The one place the hashing cost is set: Argon2id at OWASP's minimum
# (m = 19 MiB, t = 2, p = 1). Raising either re-hashes every user at their
# next login: a hash that does not start with ARGON2_PARAMETERS is outdated.
TIME_COST = 2
MEMORY_KIB = 19 * 1024
ARGON2_PARAMETERS = f"$argon2id$v=19$m={MEMORY_KIB},t={TIME_COST},p=1$"

# Werkzeug's generate_password_hash, as apps built from the Flask tutorials
# store passwords, with what checking one costs in Argon2id checks (Werkzeug
# 3.1's defaults measured on a 2-core machine: pbkdf2 with 1,000,000 rounds
# 254 ms, scrypt 116 ms, Argon2id 31 ms).
LEGACY_CHECK_COST = {"pbkdf2:": 8, "scrypt:": 4}
LEGACY_PREFIXES = tuple(LEGACY_CHECK_COST)
# What `flask users legacy-hashes --expire` stores instead: no password matches it.
EXPIRED_HASH = "!expired"

MIN_LENGTH = 8
MAX_LENGTH = 1024
COMMON_PASSWORDS_FILE = Path(__file__).with_name("data") / "common-passwords.txt.gz"


# Under gunicorn's gevent worker (src/gunicorn.conf.py), password hashing runs
# in a thread of its own per worker: libsodium and hashlib's pbkdf2 and
# scrypt release the GIL, so the event loop goes on serving meanwhile. One
# thread per worker (WEB_CONCURRENCY is about the core count), at a lower CPU
# priority, so a flood of logins queues for it instead of starving the cheap
# requests (docs/production.md, "Workers").
HASH_THREADS = 1
HASH_NICE = 10
# A worker's queue for its hashing thread: at most HASH_QUEUE requests may be
# hashing or waiting at once, and a hash that has not started
# HASH_WAIT_SECONDS after it was queued is not done at all. Either way the
# request is refused (HashingBusy: a 503 with Retry-After) instead of
# queueing for seconds: a hash takes about 25 ms on an idle machine, ten
# times that while a flood keeps the CPUs busy.
HASH_QUEUE = 16
HASH_WAIT_SECONDS = 1.0


class Admission:
    """Places in a worker's queue for the hashing thread: `turn()` takes one for a request, or refuses.

    Only under gevent, where greenlets switch only when they wait: taking a
    place needs no lock. Without an event loop (flask run, the CLI, the
    tests' client) each request hashes in its own thread and nothing queues.
    """

    def __init__(self, places: int):
        self.places = places
        self.taken = 0

    @contextlib.contextmanager
    def turn(self):
        if self.taken >= self.places:
            raise HashingBusy()
        self.taken += 1
        try:
            yield
        finally:
            self.taken -= 1


_admission = Admission(HASH_QUEUE)


@contextlib.contextmanager
def hashing_turn():
    """Hold a place in this worker's hashing queue for the whole of a request's password work, or refuse it."""
    if not under_gevent():
        yield
        return
    with _admission.turn():
        yield


def _off_the_event_loop(function, *args):
    if not under_gevent():
        return function(*args)  # no event loop to keep free: flask run, the tests, the CLI
    late, outcome = _hash_pool().apply(_niced, (time.monotonic() + HASH_WAIT_SECONDS, function, *args))
    if late:
        raise HashingBusy()
    if isinstance(outcome, Exception):
        raise outcome  # raised here, in the request: gevent would log a traceback for one raised in its thread
    return outcome


@functools.cache
def _hash_pool():
    from gevent.threadpool import ThreadPool

    return ThreadPool(HASH_THREADS)


def _niced(deadline: float, function, *args) -> tuple[bool, object]:
    """In the hashing thread: (True, None) when its turn came after `deadline`, else (False, result or exception)."""
    if time.monotonic() > deadline:
        return True, None
    os.setpriority(os.PRIO_PROCESS, 0, HASH_NICE)  # on Linux, the calling thread only
    try:
        return False, function(*args)
    except Exception as error:
        return False, error


# Argon2id is computed by libsodium (PyNaCl), not argon2-cffi: libsodium
# chooses its AVX2 code when the CPU has it, and logins went from 56 to 65
# per second side by side (docs/decisions/0020-argon2id-through-libsodium.md).
# The stored strings are the same PHC format either library writes and reads;
# PyNaCl only lacks a "needs rehash" check, which is the prefix test above.
def argon2_hash(password: str) -> str:
    return nacl.pwhash.argon2id.str(password.encode(), opslimit=TIME_COST, memlimit=MEMORY_KIB * 1024).decode()


def argon2_matches(stored_hash: str, password: str) -> bool:
    """Whether `password` matches an Argon2id or Argon2i hash; CryptPrefixError for anything else."""
    try:
        return nacl.pwhash.verify(stored_hash.encode(), password.encode())
    except CryptPrefixError:  # a subclass of InvalidkeyError: not a hash at all
        raise
    except InvalidkeyError:  # a wrong password
        return False


def hash_password(password: str) -> str:
    return _off_the_event_loop(argon2_hash, password)


def verify_password(stored_hash: str, password: str) -> tuple[bool, bool]:
    """Check `password` against `stored_hash`: (matches, should be re-hashed)."""
    if stored_hash.startswith(LEGACY_PREFIXES):
        return _off_the_event_loop(check_password_hash, stored_hash, password), True
    try:
        matches = _off_the_event_loop(argon2_matches, stored_hash, password)
    except CryptPrefixError:  # an expired hash, or garbage: as slow a "no" as any other
        burn_hash_time(password)
        return False, False
    return matches, matches and not stored_hash.startswith(ARGON2_PARAMETERS)


def check_cost(stored_hash: str) -> int:
    """What checking a password against `stored_hash` costs, in Argon2id checks."""
    return next((cost for prefix, cost in LEGACY_CHECK_COST.items() if stored_hash.startswith(prefix)), 1)


def burn_hash_time(password: str) -> None:
    """Spend what verifying a real hash costs, for a username that does not exist."""
    verify_password(_dummy_hash(), password)


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not a password anyone has")


@functools.cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines)


def password_problem(password: str, *, username: str | None = None) -> str | None:
    """Why `password` is refused by the password rules, or None when it is fine."""
    if len(password) < MIN_LENGTH:
        return f"Must be at least {MIN_LENGTH} characters long."
    if len(password) > MAX_LENGTH:
        return f"Must be at most {MAX_LENGTH} characters long."
    if not password.strip():
        return "Must not be only whitespace."
    if username is not None and password.strip().lower() == username.lower():
        return "Must not be the same as the username."
    if password.strip().lower() in common_passwords():
        return "Is one of the most common passwords; choose another."
    return None
