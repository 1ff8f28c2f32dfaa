"""Growing past one VM (docs/operations.md): two web nodes, each a gunicorn started with
provisio-web.service's command line on a port of its own, behind the shipped nginx with both in its
upstream, and two workers as provisio-worker.service starts them, on one PostgreSQL database.

nginx passes requests to the nodes in turn (no sticky sessions); each node's access log names the
request ids it served (nginx's X-Request-ID, which the app answers with), so a test knows which node
answered what, and steers a request to a node of its choosing when it must. Through that front a sign-in,
a secure link, the sign-in throttle, a bulk job and the outbox behave as on one node.
"""

import html
import re
import secrets
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from extensions import db
from models import Account, Group, Message, MessageStatus, Role, Status, WorkerBeat
from services import staff
from tests.deploy.conftest import require
from tests.deploy.shipped import (
    CSRF,
    HOST,
    IDEMPOTENCY,
    IPHONE,
    add_account,
    running,
    signed_in,
    wait_for_mail,
)

NEEDS = ("nginx", "gunicorn")
POSTGRESQL = True  # SQLite is one machine's file (conftest leaves the module out on it, in one line)
NODES = (0, 1)
BULK_ACCOUNTS = 24  # more messages than one worker's threads (4) claim at once: both workers take some
LOGIN_MAX_FAILURES = 5  # config.py's default: the environment file leaves it alone


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, database_url):
    require(*NEEDS)
    with running(tmp_path_factory.mktemp("nodes"), database_url, nodes=len(NODES), workers=2) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def console(deployment):
    """The administrator signed in through nginx (password, then the authenticator's set-up)."""
    return signed_in(deployment)


def nodes_of(deployment, answers) -> list[int]:
    return [deployment.served_by(answer) for answer in answers]


def test_a_sign_in_begun_on_one_node_ends_on_the_other_and_its_session_works_on_both(deployment, console):
    login_page, password_step, two_factor_page, code_step, home = console.answers
    pages = []
    for node in (*NODES, *NODES):
        deployment.steer(node)
        pages.append(console.get("/accounts"))

    assert password_step.status_code == 302 and code_step.status_code == 302
    # The half-way sign-in (password checked, code due) lives in the signed cookie, the session in the
    # database: neither needs the node that made it.
    assert deployment.served_by(password_step) != deployment.served_by(two_factor_page)
    assert deployment.served_by(two_factor_page) != deployment.served_by(code_step)
    assert deployment.served_by(code_step) != deployment.served_by(home)
    assert nodes_of(deployment, pages) == [*NODES, *NODES]
    assert [page.status_code for page in pages] == [200] * 4
    assert all("10000001" in page.text for page in pages)  # the account list, not the sign-in page


def test_a_link_sent_on_one_node_opens_and_activates_on_the_other_and_is_spent_on_both(deployment, console):
    deployment.steer(0)
    page = console.get(f"/accounts/{deployment.account_id}")
    deployment.steer(1)
    sent = console.post(f"/accounts/{deployment.account_id}/send", {
        "csrf_token": CSRF.search(page.text).group(1),
        "idempotency_key": IDEMPOTENCY.search(page.text).group(1), "kind": "link", "channel": "email"})
    mail = wait_for_mail(deployment.smtp, 1)
    token = re.search(rf"https://{re.escape(HOST)}:{deployment.tls}/m/([A-Za-z0-9_.\-]+)",
                      mail.get_content()).group(1)
    phone = deployment.browser(user_agent=IPHONE)
    deployment.steer(0)
    landing = phone.get(f"/m/{token}")
    form = {"csrf_token": CSRF.search(landing.text).group(1), "platform": "ios"}
    deployment.steer(1)
    activation = phone.post(f"/m/{token}/activate", form, referrer=False)
    deployment.steer(0)
    again = phone.post(f"/m/{token}/activate", form, referrer=False)
    deployment.steer(1)
    reopened = phone.get(f"/m/{token}")

    assert nodes_of(deployment, [page, sent, landing, activation, again, reopened]) == [0, 1, 0, 1, 0, 1]
    assert sent.status_code == 302
    assert landing.status_code == 200
    assert activation.status_code == 200 and activation.json()["account"]["username"] == "10000001"
    assert again.status_code == 410 and "10000001" not in again.text  # single use, whichever node
    assert reopened.status_code == 410
    with deployment.app.app_context():
        assert db.session.get(Account, deployment.account_id).status is Status.ACTIVATED


def test_failed_sign_ins_spread_over_both_nodes_lock_the_username_at_the_configured_count(deployment):
    password = secrets.token_urlsafe(15)
    with deployment.app.app_context():
        staff.create(username="lena", password=password, role=Role.CSR, full_name="Lena", actor="test")
    guesser = deployment.browser()
    attempts = []
    for attempt in range(LOGIN_MAX_FAILURES + 1):
        token = CSRF.search(guesser.get("/auth/login").text).group(1)
        deployment.steer(attempt % len(NODES))
        wrong = attempt < LOGIN_MAX_FAILURES  # the last one is the right password, too late
        attempts.append(guesser.post("/auth/login", {"csrf_token": token, "username": "lena",
                                                     "password": "not-her-password" if wrong else password}))

    assert nodes_of(deployment, attempts) == [attempt % len(NODES) for attempt in range(len(attempts))]
    assert all(html.escape(staff.INVALID_LOGIN) in answer.text for answer in attempts[:-1])
    assert "Too many failed sign-ins for this username" in attempts[-1].text  # counted across both nodes
    assert "Location" not in attempts[-1].headers  # not on to the code step


def test_a_bulk_send_started_on_one_node_is_followed_on_the_other_and_two_workers_send_each_mail_once(
        deployment, console):
    with deployment.app.app_context():
        group_id = db.session.scalar(select(Group.id).where(Group.name == "Group A"))  # the seed's
    addresses = [f"bulk{n}@example.com" for n in range(BULK_ACCOUNTS)]
    for n, address in enumerate(addresses):
        add_account(deployment.app, group_id, f"2000{n:04d}", f"+4178{n:07d}", owner="Bulk Person",
                    email=address)
    before = len(deployment.smtp.inbox.messages)
    search = {"action": "send-link-email", "scope": "all", "q": 'owner:"bulk person"', "group": "",
              "status": "", "registered": ""}

    deployment.steer(0)
    listing = console.get("/accounts")
    review = console.post("/accounts/bulk", {**search, "csrf_token": CSRF.search(listing.text).group(1)})
    key = re.search(r'name="key" value="([^"]+)"', review.text).group(1)
    deployment.steer(0)
    started = console.post("/accounts/bulk", {**search, "csrf_token": CSRF.search(review.text).group(1),
                                              "count": str(BULK_ACCOUNTS), "confirmed": "1", "key": key})
    progress_url = started.headers["Location"]
    deployment.steer(1)
    followed = console.get(progress_url)
    polls = [console.get(f"{progress_url}/progress")]
    deadline = time.monotonic() + 60
    while "data-finished" not in polls[-1].text:
        assert time.monotonic() < deadline, "the bulk job did not finish"
        time.sleep(0.5)
        polls.append(console.get(f"{progress_url}/progress"))
    done = console.get(progress_url)
    with deployment.app.app_context():
        deadline = time.monotonic() + 60
        while db.session.scalar(select(func.count(Message.id)).where(Message.status != MessageStatus.SENT)):
            assert time.monotonic() < deadline, "the workers did not send every message"
            time.sleep(0.5)
            db.session.rollback()  # a new snapshot
        workers = db.session.scalar(select(func.count(WorkerBeat.name)))
    delivered = deployment.smtp.inbox.messages[before:]

    assert (deployment.served_by(started), deployment.served_by(followed)) == (0, 1)
    # The other node shows the job: its progress, or (a batched bulk send is quick) already its outcome.
    assert followed.status_code == 200
    assert (f"of {BULK_ACCOUNTS} done" in followed.text
            or f"Done: {BULK_ACCOUNTS} accounts changed." in followed.text), followed.text
    assert set(nodes_of(deployment, polls + [done])) == set(NODES)
    assert f"Done: {BULK_ACCOUNTS} accounts changed." in done.text
    assert workers == 2  # both workers ran beside each other
    recipients = Counter(address for message in delivered for address in message.get_all("To"))
    assert recipients == Counter(addresses)  # each account's link once: no message sent twice
    assert len({message["Message-ID"] for message in delivered}) == BULK_ACCOUNTS


def test_signing_out_on_one_node_ends_the_session_on_the_other(deployment, console):
    deployment.steer(0)
    page = console.get("/accounts")
    deployment.steer(1)
    signed_out = console.post("/auth/logout", {"csrf_token": CSRF.search(page.text).group(1)})
    deployment.steer(0)
    after = console.get("/accounts")

    assert nodes_of(deployment, [page, signed_out, after]) == [0, 1, 0]
    assert signed_out.status_code == 302
    assert after.status_code == 302 and "/auth/login" in after.headers["Location"]
