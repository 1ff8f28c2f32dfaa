"""The outbox: status moves when the SMTP server accepts, retries with backoff, permanent
failures, leases, idempotency, rate limits, atomic claims and the admin's test e-mail."""

import re
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from extensions import db
from models import Account, Channel, Message, MessageKind, MessageStatus, Status, utcnow
from services import accounts, delivery, links, messaging, settings, staff
from tests.mail import free_port
from tests.webtools import detached, flashes, page_text, run_worker

LINK = re.compile(r"https://activate\.example\.test/m/([A-Za-z0-9_.\-]+)")


# -- helpers -------------------------------------------------------------------------------

def send(browser, account_id: int, kind: str = "link", key: str | None = None):
    """The CSR presses Send on the account page (by e-mail)."""
    return browser.post(f"/accounts/{account_id}/send", {
        "kind": kind, "channel": "email", "idempotency_key": key or uuid.uuid4().hex})


def queue(app, account_id: int, admin_id: int, kind: MessageKind = MessageKind.LINK) -> int:
    """Queue a message through the service, as the admin."""
    with app.app_context():
        account = db.session.get(Account, account_id)
        return messaging.queue(account, kind, Channel.EMAIL, actor=staff.get(admin_id)).id


def messages(app, account_id: int | None = None) -> list[Message]:
    with app.app_context():
        query = select(Message).order_by(Message.id)
        if account_id is not None:
            query = query.where(Message.account_id == account_id)
        rows = list(db.session.scalars(query))
        db.session.expunge_all()
        return rows


def account_row(app, account_id: int) -> Account:
    return detached(app, Account, account_id)


def make_due(app) -> None:
    """Pretend the backoff has passed for every queued message."""
    with app.app_context():
        db.session.execute(update(Message).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def point_mail_at(app, port: int) -> None:
    with app.app_context():
        mail = dict(settings.get("mail"), port=port)
        settings.save({"mail": mail}, actor="test")


# -- status moves on acceptance ------------------------------------------------------------

def test_installation_email_sent_only_once_the_smtp_server_accepts(app, csr, mail_settings, make_account):
    account_id = make_account(wizard=True)
    assert send(csr, account_id).status_code == 302
    [queued] = messages(app, account_id)
    assert queued.status is MessageStatus.QUEUED
    assert account_row(app, account_id).status is Status.CREATED  # queued is not sent
    assert mail_settings.inbox.messages == []

    run_worker(app)

    assert len(mail_settings.inbox.messages) == 1
    account = account_row(app, account_id)
    assert account.status is Status.INSTALLATION_SENT
    assert account.status_label == "Installation e-mail sent"
    [sent] = messages(app, account_id)
    assert sent.status is MessageStatus.SENT and sent.sent_at is not None and sent.attempts == 1
    assert mail_settings.inbox.messages[0].get_all("Message-ID") == [sent.provider_id]  # one, and ours


def test_activation_message_sets_activation_email_sent(app, csr, mail_settings, make_account):
    account_id = make_account(wizard=True)
    assert send(csr, account_id, kind="activation").status_code == 302
    assert account_row(app, account_id).status is Status.CREATED

    run_worker(app)

    assert len(mail_settings.inbox.messages) == 1
    assert account_row(app, account_id).status_label == "Activation e-mail sent"


# -- retries -------------------------------------------------------------------------------

def test_unreachable_server_keeps_message_queued_then_delivers_it_once_with_a_valid_link(
        app, csr, mail_settings, make_account):
    account_id = make_account(wizard=True)
    point_mail_at(app, free_port())  # nothing listens there
    assert send(csr, account_id).status_code == 302
    [queued] = messages(app, account_id)
    before = utcnow()

    run_worker(app)

    [waiting] = messages(app, account_id)
    assert waiting.status is MessageStatus.QUEUED
    assert waiting.attempts == 1
    assert waiting.next_attempt_at > before
    assert "unreachable" in waiting.last_error
    assert waiting.lease_until is None
    assert account_row(app, account_id).status is Status.CREATED
    run_worker(app)  # not due yet: nothing happens
    assert messages(app, account_id)[0].attempts == 1

    point_mail_at(app, mail_settings.port)
    make_due(app)
    run_worker(app)
    run_worker(app)

    assert len(mail_settings.inbox.messages) == 1
    [sent] = messages(app, account_id)
    assert sent.status is MessageStatus.SENT and sent.attempts == 2
    assert sent.link_version == queued.link_version
    assert account_row(app, account_id).status_label == "Installation e-mail sent"
    token = LINK.search(mail_settings.inbox.messages[0].get_content()).group(1)
    with app.app_context():  # the retry sent the queued message's own link
        assert links.verify(token, max_age_hours=1) == db.session.get(Message, queued.id).link_hash
    assert app.test_client().get(f"/m/{token}").status_code == 200


def test_recipient_refused_with_550_fails_after_one_attempt_and_shows_the_servers_words(
        app, csr, mail_settings, make_account):
    account_id = make_account(wizard=True, email="gone@example.com")
    mail_settings.inbox.refuse["gone@example.com"] = "550 5.1.1 No such mailbox here"
    assert send(csr, account_id).status_code == 302

    run_worker(app)

    [failed] = messages(app, account_id)
    assert failed.status is MessageStatus.FAILED and failed.attempts == 1
    assert "550" in failed.last_error
    assert account_row(app, account_id).status is Status.CREATED
    assert mail_settings.inbox.messages == []
    page = page_text(csr.get(f"/accounts/{account_id}"))
    assert "550 5.1.1 No such mailbox here" in page
    assert "msg--failed" in page


def test_message_fails_after_the_maximum_number_of_attempts(app, csr, mail_settings, make_account):
    app.config["OUTBOX_MAX_ATTEMPTS"] = 3
    account_id = make_account(wizard=True)
    point_mail_at(app, free_port())
    assert send(csr, account_id).status_code == 302

    for attempt in (1, 2):
        run_worker(app)
        [message] = messages(app, account_id)
        assert (message.status, message.attempts) == (MessageStatus.QUEUED, attempt)
        make_due(app)
    run_worker(app)

    [message] = messages(app, account_id)
    assert (message.status, message.attempts) == (MessageStatus.FAILED, 3)
    assert "unreachable" in message.last_error
    make_due(app)
    run_worker(app)
    assert messages(app, account_id)[0].attempts == 3  # a failed message is never tried again
    assert account_row(app, account_id).status is Status.CREATED


# -- leases and claims ---------------------------------------------------------------------

def test_message_of_a_killed_worker_is_claimed_again_after_its_lease_expires(
        app, admin_id, mail_settings, make_account):
    account_id = make_account(wizard=True)
    message_id = queue(app, account_id, admin_id)
    with app.app_context():
        assert delivery.claim() == [message_id]  # this worker dies before it sends

    run_worker(app)  # the lease is still live: another worker leaves it alone
    assert mail_settings.inbox.messages == []
    [leased] = messages(app, account_id)
    assert (leased.status, leased.attempts) == (MessageStatus.QUEUED, 1)

    with app.app_context():
        db.session.execute(update(Message).values(lease_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    run_worker(app)

    assert len(mail_settings.inbox.messages) == 1
    [sent] = messages(app, account_id)
    assert (sent.status, sent.attempts) == (MessageStatus.SENT, 2)
    token = LINK.search(mail_settings.inbox.messages[0].get_content()).group(1)
    assert app.test_client().get(f"/m/{token}").status_code == 200  # the same, still valid link


def test_claim_skips_a_live_lease_and_takes_an_expired_one(app, admin_id, make_account):
    message_id = queue(app, make_account(wizard=True), admin_id)
    lease = timedelta(seconds=app.config["OUTBOX_LEASE_SECONDS"])
    with app.app_context():
        now = utcnow()
        assert delivery.claim(now=now) == [message_id]
        assert delivery.claim(now=now + lease - timedelta(seconds=1)) == []
        assert delivery.claim(now=now + lease + timedelta(seconds=1)) == [message_id]
        assert db.session.get(Message, message_id).attempts == 2


def test_claim_never_hands_the_same_message_to_two_claimers(app, admin_id, make_account):
    first_id = queue(app, make_account(wizard=True), admin_id)
    second_id = queue(app, make_account(wizard=True), admin_id)
    with app.app_context():
        [first] = delivery.claim()
        [second] = delivery.claim()
        assert delivery.claim() == []
        assert {first, second} == {first_id, second_id}
        assert db.session.get(Message, first_id).lease_until is not None


def test_a_batch_claim_takes_the_oldest_due_messages_and_leaves_the_rest(app, admin_id, make_account):
    ids = [queue(app, make_account(wizard=True), admin_id) for _ in range(5)]
    with app.app_context():
        assert sorted(delivery.claim(limit=3)) == ids[:3]
        assert sorted(delivery.claim(limit=3)) == ids[3:]
        assert delivery.claim(limit=3) == []


def test_concurrent_claimers_never_share_a_message(app, admin_id, make_account):
    queued = {queue(app, make_account(wizard=True), admin_id) for _ in range(6)}
    claimed: list[int] = []
    start = threading.Barrier(6)

    def claimer() -> None:
        with app.app_context():
            start.wait(timeout=10)
            for _ in range(len(queued) + 1):  # bounded: a broken claim fails here instead of hanging
                if not (ids := delivery.claim(limit=2)):
                    break
                claimed.extend(ids)

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(claimed) == len(set(claimed))  # nobody got a message someone else holds
    with app.app_context():
        for _ in range(len(queued) + 1):  # a claimer may give up early, but never claim twice
            if not (ids := delivery.claim()):
                break
            claimed.extend(ids)
    assert sorted(claimed) == sorted(queued)


# -- idempotency and rate limit --------------------------------------------------------------

def test_double_click_with_the_same_idempotency_key_queues_one_message(app, csr, mail_settings, make_account):
    account_id = make_account(wizard=True)
    key = uuid.uuid4().hex
    assert send(csr, account_id, key=key).status_code == 302
    assert send(csr, account_id, key=key).status_code == 302

    assert len(messages(app, account_id)) == 1
    run_worker(app)
    assert len(mail_settings.inbox.messages) == 1


def test_sixth_send_within_the_rate_window_is_refused_with_a_message_and_no_row(
        app, csr, mail_settings, make_account):
    app.config["SEND_RATE_LIMIT"] = 5
    account_id = make_account(wizard=True)
    for _ in range(5):
        assert send(csr, account_id).status_code == 302
    assert len(messages(app, account_id)) == 5

    page = csr.get(send(csr, account_id).headers["Location"])

    assert len(messages(app, account_id)) == 5
    [(category, text)] = [flash for flash in flashes(page) if flash[0] == "error"]
    assert text.startswith("Not sent: user0001 already got 5 messages in the last 30 minutes")


# -- the admin's test e-mail -----------------------------------------------------------------

def test_send_test_email_reports_the_servers_acceptance(app, admin, mail_settings):
    page = admin.post("/admin/settings/test-email", {"recipient": "ops@example.com"}, follow_redirects=True)

    assert ("success", "Test e-mail accepted by the server for ops@example.com.") in flashes(page)
    assert [mail["To"] for mail in mail_settings.inbox.messages] == ["ops@example.com"]


def test_send_test_email_reports_the_error_when_the_server_is_unreachable(app, admin, mail_settings):
    point_mail_at(app, free_port())

    page = admin.post("/admin/settings/test-email", {"recipient": "ops@example.com"}, follow_redirects=True)

    [(category, text)] = [flash for flash in flashes(page) if flash[0] == "error"]
    assert text.startswith("Test e-mail not sent (transient): SMTP server unreachable")
    assert mail_settings.inbox.messages == []


@pytest.mark.parametrize("kind", list(MessageKind))
def test_rendered_message_of_every_kind_carries_the_link_but_never_the_sip_password(
        app, admin_id, mail_settings, make_account, kind):
    account_id = make_account(wizard=True)
    message_id = queue(app, account_id, admin_id, kind)
    run_worker(app)
    body = mail_settings.inbox.messages[0].get_content()
    with app.app_context():
        account = db.session.get(Account, account_id)
        assert accounts.sip_password(account) not in body
        token = LINK.search(body).group(1)
        message = db.session.get(Message, message_id)
        assert links.verify(token, max_age_hours=1) == message.link_hash  # this message's link, of its kind
        assert links.read_for_page(token, max_age_hours=1).hint == kind.value
        assert db.session.scalar(select(func.count(Message.id))) == 1


def test_resend_forms_on_the_account_and_messages_pages_queue_a_new_message(
    app, csr, mail_settings, make_account
):
    account_id = make_account(wizard=True)
    send(csr, account_id)
    [first] = messages(app, account_id)
    action = f"/accounts/{account_id}/messages/{first.id}/resend"

    for page in (f"/accounts/{account_id}", "/messages"):
        form = re.search(rf'<form method="post" action="{action}"[^>]*>(.*?)</form>',
                         page_text(csr.get(page)), re.S)
        assert form and "Resend" in form.group(1), page
        key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', form.group(1)).group(1)
        assert csr.post(action, {"idempotency_key": key}).status_code == 302

    assert len(messages(app, account_id)) == 3


def test_a_provisioning_message_goes_by_email_whatever_channel_its_caller_asks(app, admin_id, make_account):
    account_id = make_account()
    with app.app_context():
        account = db.session.get(Account, account_id)
        message = messaging.queue(account, MessageKind.PROVISIONING, Channel.SMS, actor=staff.get(admin_id))
        assert (message.channel, message.recipient) == (Channel.EMAIL, account.email)


def test_a_csrs_provisioning_message_goes_by_email_with_the_sms_button_ticked(app, csr, make_account):
    account_id = make_account()
    response = csr.post(f"/accounts/{account_id}/send", {"kind": "provisioning", "channel": "sms",
                                                         "idempotency_key": uuid.uuid4().hex})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalars(select(Message.channel)).all() == [Channel.EMAIL]
