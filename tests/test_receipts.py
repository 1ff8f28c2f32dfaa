"""Delivery receipts as the providers send them: a real HTTP callback from a stand-in of Vonage or
Clickatell to the app served on a loopback port, while the real worker delivers.

The stand-ins call back the way their dashboards can be set to: Vonage by GET, by form POST or signed,
Clickatell with its JSON status callback; early (before the send is even answered) or once it is.
"""

import json
import logging
import urllib.request

import pytest
from sqlalchemy import select

from extensions import db
from models import Message, MessageStatus, PendingReceipt
from services import receipts
from tests.support import configure_sms, queue_sms_links
from tests.webtools import run_worker
from tools.fake_providers import FakeClickatell, FakeVonage

VONAGE = {"api_key": "key123", "api_secret": "secret456", "sender": "Provisio"}
CLICKATELL = {"api_key": "click-key"}


def statuses(app, message_ids: list[int]) -> list[MessageStatus]:
    with app.app_context():
        return [db.session.get(Message, message_id).status for message_id in message_ids]


def callback_url(app, live_server: str, gateway: str) -> str:
    with app.app_context():
        return receipts.callback_urls(live_server)[gateway]


def sent_through_vonage(app, account_ids: list[int]) -> tuple[list[int], FakeVonage, str]:
    """Send a link SMS to each account through a Vonage stand-in that calls back nobody; return the
    messages, the stand-in (it made the receipts' ids) and the receipt URL's path, for a test to post to."""
    configure_sms(app, "vonage", vonage=VONAGE)
    ids = queue_sms_links(app, account_ids)
    with FakeVonage("key123", "secret456") as vonage:
        configure_sms(app, "vonage", vonage={**VONAGE, "base_url": vonage.base_url})
        run_worker(app, threads=4)
    return ids, vonage, callback_url(app, "http://x", "vonage").removeprefix("http://x")


@pytest.fixture
def accounts_for_sms(make_account):
    return lambda count: [make_account(wizard=True) for _ in range(count)]


def test_receipts_that_come_before_the_send_is_recorded_are_all_applied(app, live_server, admin_id,
                                                                           accounts_for_sms):
    configure_sms(app, "vonage", vonage=VONAGE)
    ids = queue_sms_links(app, accounts_for_sms(20))
    with FakeVonage("key123", "secret456") as vonage:
        configure_sms(app, "vonage", vonage={**VONAGE, "base_url": vonage.base_url})
        # Vonage by GET, and every receipt sent before Vonage even answers the send.
        vonage.receipts_to(callback_url(app, live_server, "vonage"), method="GET", early=True)
        run_worker(app, threads=4)

    assert len(vonage.accepted) == 20
    assert vonage.receipt_answers == [204] * 20  # answered at once, nothing for Vonage to retry
    assert statuses(app, ids) == [MessageStatus.DELIVERED] * 20
    with app.app_context():
        assert db.session.scalars(select(PendingReceipt)).all() == []


def test_messages_queued_before_the_default_gateway_changed_get_their_receipts(app, live_server, admin_id,
                                                                                 accounts_for_sms):
    configure_sms(app, "vonage", vonage=VONAGE)
    ids = queue_sms_links(app, accounts_for_sms(3))
    with FakeClickatell("click-key") as clickatell:
        configure_sms(app, "clickatell", vonage=VONAGE,
                  clickatell={**CLICKATELL, "base_url": clickatell.base_url})
        clickatell.receipts_to(callback_url(app, live_server, "clickatell"), method="POST-JSON")
        run_worker(app, threads=4)
        clickatell.wait_for_receipts()

    assert clickatell.receipt_answers == [204] * 3
    assert statuses(app, ids) == [MessageStatus.DELIVERED] * 3
    with app.app_context():
        assert {db.session.get(Message, message_id).gateway for message_id in ids} == {"clickatell"}


def test_a_failed_receipt_shows_the_providers_words(app, live_server, admin_id, accounts_for_sms):
    configure_sms(app, "vonage", vonage=VONAGE)
    ids = queue_sms_links(app, accounts_for_sms(1))
    with FakeVonage("key123", "secret456") as vonage:
        configure_sms(app, "vonage", vonage={**VONAGE, "base_url": vonage.base_url})
        vonage.receipts_to(callback_url(app, live_server, "vonage"), method="POST", status="failed")
        run_worker(app, threads=4)
        vonage.wait_for_receipts()
    with app.app_context():
        message = db.session.get(Message, ids[0])
        assert message.status is MessageStatus.FAILED
        assert message.last_error == ("The provider reported the message as not delivered: "
                                      "Vonage: failed (err-code 1)")


def test_a_retried_receipt_changes_nothing_more(app, admin_id, accounts_for_sms):
    ids, vonage, url = sent_through_vonage(app, accounts_for_sms(1))
    receipt = vonage.receipt(vonage.accepted[0]["message-id"], vonage.accepted[0]["to"], "delivered")
    answers = [app.test_client().get(url, query_string=receipt).status_code for _ in range(3)]

    assert answers == [204, 204, 204]
    assert statuses(app, ids) == [MessageStatus.DELIVERED]


def test_a_vonage_get_receipt_changes_only_the_message_it_names_and_head_changes_nothing(app, admin_id,
                                                                                          accounts_for_sms):
    ids, vonage, url = sent_through_vonage(app, accounts_for_sms(2))
    first = vonage.receipt(vonage.accepted[0]["message-id"], vonage.accepted[0]["to"], "delivered")
    client = app.test_client()

    assert client.head(url, query_string=first).status_code == 204
    assert statuses(app, ids) == [MessageStatus.SENT] * 2
    assert client.head(url[:-4] + "0000", query_string=first).status_code == 404
    assert client.get(url[:-4] + "0000", query_string=first).status_code == 404
    assert client.get(url, query_string=first).status_code == 204
    assert sorted(statuses(app, ids)) == sorted([MessageStatus.DELIVERED, MessageStatus.SENT])
    # Clickatell's callback is a POST: its URL takes no GET.
    assert client.get(callback_url(app, "http://x", "clickatell").removeprefix("http://x"),
                      query_string=first).status_code == 405


def test_signed_vonage_receipts_are_checked_once_a_signature_secret_is_set(app, live_server, admin_id,
                                                                           accounts_for_sms):
    signed = {**VONAGE, "signature_secret": "sig-secret-7"}
    configure_sms(app, "vonage", vonage=signed)
    ids = queue_sms_links(app, accounts_for_sms(2))
    with FakeVonage("key123", "secret456", signature_secret="sig-secret-7") as vonage:
        configure_sms(app, "vonage", vonage={**signed, "base_url": vonage.base_url})
        vonage.receipts_to(callback_url(app, live_server, "vonage"), method="GET", early=True)
        run_worker(app, threads=1)
    assert vonage.receipt_answers == [204, 204]
    assert statuses(app, ids) == [MessageStatus.DELIVERED] * 2

    url = callback_url(app, "http://x", "vonage").removeprefix("http://x")
    forged = vonage.receipt(vonage.accepted[0]["message-id"], vonage.accepted[0]["to"], "failed")
    forged["status"] = "failed"
    unsigned = {key: value for key, value in forged.items() if key not in ("sig", "nonce", "timestamp")}
    with_other_values = {**forged, "messageId": vonage.accepted[1]["message-id"]}
    for body in (unsigned, with_other_values):
        assert app.test_client().get(url, query_string=body).status_code == 403
    assert statuses(app, ids) == [MessageStatus.DELIVERED] * 2


BAD_BODIES = [
    {"statusCode": "9" * 5000},
    {"messageId": "abc", "statusCode": "9" * 5000},
    {"messageId": "9" * 5000, "statusCode": 4},
    {"messageId": ["abc"], "statusCode": {"$gt": 0}},
    {"messageId": None, "status": None},
    [1, 2, 3],
    "a string",
    {"messageId": "abc", "statusCode": "²"},
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_no_receipt_body_makes_a_5xx(app, body):
    url = callback_url(app, "http://x", "clickatell").removeprefix("http://x")

    assert app.test_client().post(url, json=body).status_code == 204


@pytest.mark.parametrize("raw", [b'{"statusCode": ' + b"9" * 5000 + b"}", b"\xff\xfe{", b"{" * 100_000,
                                 b'{"messageId": "a", "statusCode": 1e999}'])
def test_no_raw_receipt_body_makes_a_5xx(app, raw):
    url = callback_url(app, "http://x", "clickatell").removeprefix("http://x")
    answer = app.test_client().post(url, data=raw, headers={"Content-Type": "application/json"})

    assert answer.status_code == 204


def test_a_bad_receipt_over_http_logs_no_secret(app, live_server, caplog):
    url = callback_url(app, live_server, "clickatell")
    secret = url.rsplit("/", 1)[1]
    caplog.set_level(logging.DEBUG)
    for body in BAD_BODIES:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 204

    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "/hooks/receipts/clickatell/[masked]" in logged
    assert secret not in logged
