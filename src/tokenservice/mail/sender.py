"""The outbox's sender: claims what is due, sends it, and tries again later when the mail server is away.

One runs in each web worker (a thread: a greenlet under gevent), woken by
this worker's commits that wrote to the outbox and otherwise every
POLL_SECONDS; `flask mail send` runs `send_due` once instead (a worker dyno,
a scheduler). Workers and instances share the outbox without sending a mail
twice: a mail is claimed, one at a time, by an UPDATE of the row picked FOR
UPDATE SKIP LOCKED, for CLAIM_SECONDS, and sent with no database connection
held. Only if the worker dies, or loses the database, between the server's
acceptance and the row's update is a mail sent again, once its claim runs
out (docs/mail.md).
"""

import logging
import os
import threading
import time
from datetime import timedelta

from flask import Flask, current_app
from sqlalchemy import event, func, text, update

from ..rules import events, notices
from ..rules.password_reset import look_into_reset_request
from ..storage.database import DATABASE_UNAVAILABLE
from ..storage.extensions import db
from ..storage.models import OutboxItem
from .delivery import deliver, message

POLL_SECONDS = 2.0
MOST_PER_RUN = 500  # of each kind, before a run ends (the next begins at once when woken)
CLAIM_SECONDS = 120  # one mail's: longer than a send can take (SMTP_SECONDS per step, a few steps)
MAX_ATTEMPTS = 12  # about 18 minutes of trying: after 1, 2, 4 ... 256 s, then 300 s
MAX_BACKOFF_SECONDS = 300
KEEP_DAYS = 7  # done or given-up rows are deleted after this
FORGET_EVERY_SECONDS = 600

log = logging.getLogger("tokenservice.mail")
_wake = threading.Event()
_started_in: int | None = None  # the pid whose sender runs (a forked worker starts its own)
_start_lock = threading.Lock()
_forgot_at: float | None = None  # when this process last deleted old rows


def init_app(app: Flask) -> None:
    """Start this worker's sender with its first request (gunicorn's workers start it at once: gunicorn.conf.py)."""
    if not event.contains(db.session, "after_commit", _wake_if_queued):
        event.listen(db.session, "after_commit", _wake_if_queued)
    if app.config["MAIL_DELIVERY"] is not None and app.config["MAIL_SENDER_IN_WEB"]:
        app.before_request(lambda: start(app))


def start(app: Flask) -> None:
    """This process's sender, once (a no-op without a mail server, or with MAIL_SENDER_IN_WEB=false)."""
    global _started_in
    if app.config["MAIL_DELIVERY"] is None or not app.config["MAIL_SENDER_IN_WEB"] or _started_in == os.getpid():
        return
    with _start_lock:
        if _started_in == os.getpid():
            return
        _started_in = os.getpid()
        threading.Thread(target=_run, args=(app,), name="mail-sender", daemon=True).start()


def _run(app: Flask) -> None:
    while True:
        _wake.clear()  # a commit from now on wakes the next round
        try:
            with app.app_context():
                send_due()
        except DATABASE_UNAVAILABLE as error:
            log.warning("mail sender: the database is unavailable (%s); trying again shortly", type(error).__name__)
        except Exception:
            log.exception("mail sender: an unexpected error; going on")
        _wake.wait(POLL_SECONDS)


def _wake_if_queued(session) -> None:
    if session.info.pop(notices.QUEUED, False):
        _wake.set()


def send_due() -> dict[str, int]:
    """Look into due reset requests and send due mails, one of each in turn, until none is due; the outcomes.

    In turn, so that a flood of mails does not hold up the reset requests, nor
    they the mails; at most MOST_PER_RUN of each, so that a run ends.
    """
    outcomes = {"requests": 0, "sent": 0, "failed": 0, "given_up": 0}
    for _ in range(MOST_PER_RUN):
        looked_into = _look_into_one_request()
        sent = _send_one()
        outcomes["requests"] += looked_into
        if sent is not None:
            outcomes[sent] += 1
        if not looked_into and sent is None:
            break
    _forget_old()
    return outcomes


def _look_into_one_request() -> bool:
    """One due reset request, looked into in one transaction (its mail written in it); False when none is due."""
    item = db.session.execute(
        db.select(OutboxItem)
        .where(OutboxItem.kind == notices.RESET_REQUEST, *_due())
        .order_by(OutboxItem.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).scalar_one_or_none()
    if item is None:
        db.session.rollback()
        return False
    try:
        with db.session.begin_nested():
            look_into_reset_request(item.payload)
    except DATABASE_UNAVAILABLE:
        raise
    except Exception as error:  # one request that fails must not hold up the others: it waits, then is given up
        item.attempts += 1
        if item.attempts >= MAX_ATTEMPTS:
            item.gave_up_at, item.payload = func.now(), {}
        else:
            item.due_at = func.now() + timedelta(seconds=_backoff(item.attempts))
        events.record("reset_request_failed", warning=True, outbox_id=item.id, reason=type(error).__name__)
        log.exception("mail sender: reset request %s failed", item.id)
    else:
        item.done_at, item.payload = func.now(), {}
    db.session.commit()
    return True


def _send_one() -> str | None:
    """Claim the next due mail (for CLAIM_SECONDS), send it with no connection held, and record how it went."""
    due = (
        db.select(OutboxItem.id)
        .where(OutboxItem.kind != notices.RESET_REQUEST, *_due())
        .order_by(OutboxItem.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    claimed = db.session.execute(
        update(OutboxItem)
        .where(OutboxItem.id.in_(due.scalar_subquery()))
        .values(claimed_until=func.now() + timedelta(seconds=CLAIM_SECONDS), attempts=OutboxItem.attempts + 1)
        .returning(OutboxItem.id, OutboxItem.kind, OutboxItem.user_id, OutboxItem.payload, OutboxItem.attempts)
    ).one_or_none()
    db.session.commit()  # the claim stands, and no connection is held while sending
    if claimed is None:
        return None
    item_id, kind, user_id, payload, attempts = claimed
    try:
        deliver(message(item_id=item_id, payload=payload, mail_from=current_app.config["MAIL_FROM"]), item_id=item_id)
    except Exception as error:  # the server down or refusing, or anything else: tried again later, then given up
        reason = type(error).__name__ + (f" {error.smtp_code}" if hasattr(error, "smtp_code") else "")
        if attempts >= MAX_ATTEMPTS:
            _finish(item_id, gave_up_at=func.now())
            events.record("mail_given_up", warning=True, outbox_id=item_id, kind=kind, user_id=user_id, reason=reason)
            return "given_up"
        delay = _backoff(attempts)
        _finish(item_id, due_at=func.now() + timedelta(seconds=delay), claimed_until=None)
        events.record(
            "mail_failed",
            warning=True,
            outbox_id=item_id,
            kind=kind,
            user_id=user_id,
            attempt=attempts,
            retry_in=delay,
            reason=reason,
        )
        return "failed"
    _finish(item_id, done_at=func.now())
    events.record("mail_sent", outbox_id=item_id, kind=kind, user_id=user_id, attempt=attempts)
    return "sent"


def _backoff(attempts: int) -> int:
    return min(2 ** (attempts - 1), MAX_BACKOFF_SECONDS)


def _finish(item_id: int, **values) -> None:
    if "done_at" in values or "gave_up_at" in values:
        values["payload"] = {}  # the link in it lives no longer than it must
    db.session.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(**values))
    db.session.commit()


def _due():
    return (
        OutboxItem.done_at.is_(None),
        OutboxItem.gave_up_at.is_(None),
        OutboxItem.due_at <= func.now(),
        (OutboxItem.claimed_until.is_(None)) | (OutboxItem.claimed_until < func.now()),
    )


def _forget_old() -> None:
    """Delete the rows done or given up KEEP_DAYS ago, at most every FORGET_EVERY_SECONDS in a process."""
    global _forgot_at
    if _forgot_at is not None and time.monotonic() - _forgot_at < FORGET_EVERY_SECONDS:
        return
    _forgot_at = time.monotonic()
    db.session.execute(
        text("DELETE FROM outbox WHERE coalesce(done_at, gave_up_at) < now() - make_interval(days => :days)"),
        {"days": KEEP_DAYS},
    )
    db.session.commit()
