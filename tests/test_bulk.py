"""Bulk actions from the account list: tick accounts or take the whole search, review the count, confirm,
follow the progress; the worker applies it, with one audit row for the batch."""

import html
import re
import threading
import uuid

from sqlalchemy import func, select

from extensions import db
from models import Account, AuditEvent, Channel, Job, JobState, Message, MessageKind, MessageStatus, StaffUser
from services import bulk, idempotency, job_kinds, jobs, links, messaging, staff
from services.errors import ServiceError
from tests.webtools import detached, flashes, issue_link, page_text, run_worker


def review(browser, action: str, *, ids=(), scope: str = "selected", q: str = "", **extra):
    return browser.post("/accounts/bulk", {"action": action, "scope": scope, "ids": [str(i) for i in ids],
                                           "q": q, "group": "", "status": "", "registered": "", **extra})


def confirm(browser, action: str, count: int, key: str | None = None, **kwargs):
    """Press the review page's confirm button (its one-time key included)."""
    return review(browser, action, count=str(count), confirmed="1", key=key or uuid.uuid4().hex, **kwargs)


def visible(response) -> str:
    """The page's text as a person reads it: no tags, single spaces."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page_text(response))).split())


def account(app, account_id: int) -> Account:
    return detached(app, Account, account_id)


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_ticked_accounts_are_disabled_after_review_confirm_and_the_worker(app, csr, make_account):
    first, second, untouched = make_account(), make_account(), make_account()
    before = account(app, first).link_version

    page = review(csr, "disable", ids=[first, second])
    assert page.status_code == 200
    text = visible(page)
    assert "Disable — 2 accounts" in text and "Disable 2 accounts" in text

    started = confirm(csr, "disable", 2, ids=[first, second])
    assert started.status_code == 302
    progress_url = started.headers["Location"]
    running = page_text(csr.get(progress_url))
    assert f'data-refresh="{progress_url}/progress"' in running  # the page follows the job
    assert "0 of 2 done" in running
    assert "0 of 2 done" in page_text(csr.get(f"{progress_url}/progress"))

    run_worker(app)

    assert not account(app, first).enabled and not account(app, second).enabled
    assert account(app, first).link_version == before + 1  # links sent so far die, as for one account
    assert account(app, untouched).enabled
    assert "data-finished" in page_text(csr.get(f"{progress_url}/progress"))  # the page reloads on this
    done = page_text(csr.get(progress_url))
    assert "Done: 2 accounts changed." in done and "data-refresh" not in done
    assert [a for a in audit_actions(app) if a.startswith(("bulk.", "account."))].count("bulk.disable") == 1
    assert "account.disable" not in audit_actions(app)


def test_send_to_every_account_of_a_search_queues_one_message_each_and_reports_skips(
        app, csr, mail_settings, make_account):
    with_mail = [make_account(owner="Bulk Person", email=f"bulk{n}@example.com") for n in range(3)]
    without_mail = make_account(owner="Bulk Person", email="")
    make_account(owner="Someone Else")

    page = review(csr, "send-link-email", scope="all", q="owner:\"bulk person\"")
    assert "Send the secure link by e-mail — 4 accounts" in visible(page)
    confirmed = confirm(csr, "send-link-email", 4, scope="all", q="owner:\"bulk person\"")
    progress_url = confirmed.headers["Location"]
    run_worker(app)  # runs the job, then delivers what it queued

    with app.app_context():
        messages = list(db.session.scalars(select(Message)))
        assert sorted(m.account_id for m in messages) == sorted(with_mail)
        assert {m.status for m in messages} == {MessageStatus.SENT}
    assert len(mail_settings.inbox.messages) == 3
    done = visible(csr.get(progress_url))
    assert "Done: 3 accounts changed." in done
    assert "the account has no e-mail address" in done and without_mail  # the skip reason, counted
    assert audit_actions(app).count("bulk.send-link-email") == 1
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "bulk.send-link-email"))
        assert event.detail["search"] == 'owner:"bulk person"' and event.detail["count"] == 4
        assert event.detail["job"] == int(progress_url.rsplit("/", 1)[1])
    assert "message.queue" not in audit_actions(app)


def test_a_restarted_bulk_send_sends_nothing_twice(app, csr, mail_settings, make_account):
    ids = [make_account(email=f"again{n}@example.com") for n in range(2)]
    confirm(csr, "send-install-email", 2, ids=ids)
    with app.app_context():
        job = db.session.scalar(select(Job))
        bulk.run(job)  # a worker did the work, then died before marking the job done
        job.state, job.lease_until = JobState.QUEUED, None
        db.session.commit()
        assert jobs.run_next(job_kinds.HANDLERS)
        assert db.session.scalar(select(func.count(Message.id))) == 2


def test_confirming_a_count_that_changed_asks_again_and_starts_nothing(app, csr, make_account):
    make_account(owner="Growing")
    make_account(owner="Growing")
    response = confirm(csr, "enable", 1, scope="all", q="owner:growing")  # the CSR saw 1, now there are 2

    assert response.status_code == 200
    assert "now applies to 2 accounts. Confirm again." in visible(response)
    with app.app_context():
        assert db.session.scalar(select(func.count(Job.id))) == 0


def test_another_groups_accounts_cannot_be_ticked_by_a_csr(app, csr, make_account, other_group):
    theirs = make_account(group_id=other_group)
    response = confirm(csr, "disable", 1, ids=[theirs])

    assert response.status_code == 200
    assert "No account is selected" in page_text(response)
    assert account(app, theirs).enabled


def test_a_ticked_id_past_every_integer_type_is_no_account(app, csr, make_account):
    account_id = make_account()
    response = confirm(csr, "disable", 1, ids=[account_id, 10**20])  # a forged form: no 500

    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Job)).payload["ids"] == [account_id]  # the other names nothing


def test_a_wrong_search_in_a_bulk_action_is_explained_and_starts_nothing(app, csr, make_account):
    make_account()
    response = review(csr, "enable", scope="all", q="owner:(unclosed")

    assert response.status_code == 302
    back = csr.get(response.headers["Location"])  # the list, with the search kept and the reason shown
    assert any("could not be read" in message for _, message in flashes(back))
    with app.app_context():
        assert db.session.scalar(select(func.count(Job.id))) == 0


def test_a_viewer_cannot_start_a_bulk_action(app, viewer, make_account):
    account_id = make_account()
    assert review(viewer, "disable", ids=[account_id]).status_code == 403
    assert confirm(viewer, "disable", 1, ids=[account_id]).status_code == 403
    assert account(app, account_id).enabled


def test_a_csr_cannot_follow_another_staff_users_job(app, admin, csr, make_account):
    account_id = make_account()
    location = confirm(admin, "disable", 1, ids=[account_id]).headers["Location"]
    assert re.fullmatch(r"/accounts/bulk/\d+", location)
    assert csr.get(location).status_code == 404
    assert csr.get(f"{location}/progress").status_code == 404
    assert admin.get(location).status_code == 200


def test_a_double_clicked_confirmation_starts_one_job(app, csr, make_account):
    account_id = make_account()
    first = confirm(csr, "disable", 1, key="5a3e0000000000000000000000000001", ids=[account_id])
    second = confirm(csr, "disable", 1, key="5a3e0000000000000000000000000001", ids=[account_id])

    assert first.headers["Location"] == second.headers["Location"]
    with app.app_context():
        assert db.session.scalar(select(func.count(Job.id))) == 1
    assert audit_actions(app).count("bulk.disable") == 1


def test_equal_skip_reasons_count_together_and_deleted_accounts_are_skipped(
    app, csr, mail_settings, make_account
):
    ids = ([make_account(email=f"ok{n}@example.com") for n in range(2)]
           + [make_account(email="") for _ in range(3)])
    location = confirm(csr, "send-activation-email", 5, ids=ids).headers["Location"]
    with app.app_context():
        db.session.delete(db.session.get(Account, ids[0]))  # deleted before the worker gets to it
        db.session.commit()
    run_worker(app)

    done = visible(csr.get(location))
    assert "Done: 1 account changed." in done
    assert "the account has no e-mail address: add one, or send an SMS. 3" in done
    assert "deleted or moved out of your groups since 1" in done


# --- the review's rules, in the service -----------------------------------------------------------

SEARCH = {"search": "owner:pair", "group_id": None, "status": None, "online_since": None}
TYPED = {"search": "owner:pair", "group": "", "status": ""}


def test_a_review_counts_the_search_and_starts_nothing_until_confirmed(app, csr_id, make_account):
    ids = [make_account(owner="Pair One"), make_account(owner="Pair Two")]
    make_account(owner="Someone Else")
    with app.app_context():
        seen = bulk.review(staff.get(csr_id), "enable", selected=None, filters=SEARCH, typed=TYPED,
                           confirmed=False, count=None, key=None)
        assert (seen.ids, seen.job, seen.changed) == (ids, None, False)
        assert db.session.scalar(select(func.count(Job.id))) == 0


def test_confirming_the_count_seen_starts_the_job_and_audits_the_search_as_typed(app, csr_id, make_account):
    ids = [make_account(owner="Pair One"), make_account(owner="Pair Two")]
    with app.app_context():
        started = bulk.review(staff.get(csr_id), "enable", selected=None, filters=SEARCH, typed=TYPED,
                              confirmed=True, count=2, key=uuid.uuid4().hex)
        assert started.job.payload == {"action": "enable", "ids": ids} and not started.changed
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "bulk.enable"))
        assert event.detail == {"count": 2, "job": started.job.id, **TYPED}


def test_a_confirmation_of_another_count_says_it_changed_and_starts_nothing(app, csr_id, make_account):
    ids = [make_account(owner="Pair One"), make_account(owner="Pair Two")]
    with app.app_context():
        again = bulk.review(staff.get(csr_id), "enable", selected=None, filters=SEARCH, typed=TYPED,
                            confirmed=True, count=1, key=uuid.uuid4().hex)
        assert (again.ids, again.job, again.changed) == (ids, None, True)
        assert db.session.scalar(select(func.count(Job.id))) == 0


def test_a_confirmation_of_ticked_accounts_audits_their_ids_not_the_search(app, csr_id, make_account):
    ticked = make_account(owner="Pair One")
    make_account(owner="Pair Two")
    with app.app_context():
        started = bulk.review(staff.get(csr_id), "disable", selected=[ticked], filters=SEARCH, typed=TYPED,
                              confirmed=True, count=1, key=uuid.uuid4().hex)
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "bulk.disable"))
        assert started.ids == [ticked]
        assert event.detail == {"count": 1, "job": started.job.id, "ids": [ticked]}


# --- the batched queue (messaging.queue_many), against queue one account at a time ---------------

def sms_gateway(app) -> None:
    """Name an SMS gateway, so sends by SMS queue (no test here delivers them)."""
    from services import settings

    with app.app_context():
        settings.save({"sms": {"gateway": "vonage"}}, actor="test")


def send_job(app, csr_id) -> int:
    """A job's id, for the keys of the messages it queues."""
    with app.app_context():
        job = Job(kind=bulk.KIND, staff_id=csr_id, payload={}, total=0)
        db.session.add(job)
        db.session.commit()
        return job.id


def outcomes(app, ids, *, batched: bool, csr_id: int, job_id: int, channel=Channel.SMS):
    """What sending a link to each account did, by position: sent or the reason (with the account's own
    values replaced, as bulk reports it), then each account's link version, messages and audit rows."""
    with app.app_context():
        actor = staff.get(csr_id)
        if batched:
            batch = messaging.queue_many(ids, MessageKind.LINK, channel, actor=actor, job_id=job_id)
            said = {account_id: "sent" for account_id in batch.sent}
            said |= {account.id: bulk._reason(exc.message, account) for account, exc in batch.refused}
            said |= {account_id: "missing" for account_id in batch.missing}
        else:
            said = {}
            for account_id in ids:
                if (account := db.session.get(Account, account_id)) is None:
                    said[account_id] = "missing"
                    continue
                try:
                    messaging.queue(account, MessageKind.LINK, channel, actor=actor, job_id=job_id)
                    said[account_id] = "sent"
                except ServiceError as exc:
                    db.session.rollback()
                    said[account_id] = bulk._reason(exc.message, db.session.get(Account, account_id))
        after = []
        for account_id in ids:
            account = db.session.get(Account, account_id)
            messages = db.session.scalars(select(Message).where(Message.account_id == account_id)
                                          .order_by(Message.id)).all()
            audited = db.session.scalars(select(AuditEvent.target).where(
                AuditEvent.action == "message.queue", AuditEvent.target_id == account_id)).all()
            after.append((said[account_id], account and account.link_version,
                          [(m.kind, m.channel, m.recipient == account.callerid, m.gateway, m.link_version,
                            m.status, m.idempotency_key == idempotency.for_job(job_id, account_id),
                            m.requested_by, m.link_hash is not None, m.link_nonce_encrypted is not None)
                           for m in messages],
                          [name == account.username for name in audited] if account else audited))
        return after


def a_mix(app, make_account, tag: str) -> list[int]:
    """One account for each case a send meets: sendable, staff-disabled, not international, at the rate
    limit, deleted, sent to before; the same for every tag but for its unique values."""
    n = {"a": 1, "b": 5}[tag]
    ok = make_account(callerid=f"+4178000{n:04d}")
    disabled = make_account(callerid=f"+4178000{n + 1:04d}")
    local = make_account(callerid=f"078000{n + 2:04d}")
    busy = make_account(callerid=f"+4178000{n + 3:04d}")
    gone = make_account(callerid=f"+4178100{n:04d}")
    with app.app_context():
        db.session.get(Account, disabled).staff_disabled = True
        db.session.delete(db.session.get(Account, gone))
        db.session.commit()
        actor = db.session.scalars(select(StaffUser).order_by(StaffUser.id)).first()
        for _ in range(app.config["SEND_RATE_LIMIT"]):
            messaging.queue(db.session.get(Account, busy), MessageKind.LINK, Channel.SMS, actor=actor)
    return [ok, disabled, local, busy, gone]


def test_a_batch_queues_and_refuses_exactly_what_queue_does_one_account_at_a_time(app, csr_id, make_account):
    app.config["SEND_RATE_LIMIT"] = 2
    sms_gateway(app)
    one_by_one = outcomes(app, a_mix(app, make_account, "a"), batched=False, csr_id=csr_id,
                          job_id=send_job(app, csr_id))
    batched = outcomes(app, a_mix(app, make_account, "b"), batched=True, csr_id=csr_id,
                       job_id=send_job(app, csr_id))

    assert batched == one_by_one
    said = [outcome[0] for outcome in batched]
    assert said == ["sent", "the account is disabled: enable it before sending a link.",
                    "its number is not an international mobile number: SMS needs +<country><number>.",
                    "the account already got 2 messages in the last 30 minutes; wait before sending again.",
                    "missing"]
    assert batched[0][1] == 1 and len(batched[0][2]) == 1 and batched[0][3] == [True]  # one message, audited
    assert len(batched[3][2]) == 2  # the refused send added nothing to the two it already had


def test_a_batch_without_an_sms_gateway_refuses_every_account_as_queue_does(app, csr_id, make_account):
    ids = [make_account(), make_account()]
    job_id = send_job(app, csr_id)
    with app.app_context():
        batch = messaging.queue_many(ids, MessageKind.LINK, Channel.SMS, actor=staff.get(csr_id),
                                     job_id=job_id)
        assert batch.sent == [] and len(batch.refused) == 2
        assert {exc.message for _, exc in batch.refused} == {
            "No SMS gateway is configured yet: send by e-mail, or ask an administrator."}
        assert db.session.scalar(select(func.count(Message.id))) == 0
        assert {db.session.get(Account, i).link_version for i in ids} == {0}


def test_a_bulk_send_reports_each_skip_reason_and_queues_the_rest(app, csr, csr_id, make_account):
    sms_gateway(app)
    app.config["SEND_RATE_LIMIT"] = 1
    ok, disabled, local, busy = (make_account(), make_account(), make_account(callerid="0780001234"),
                                 make_account())
    no_mail = make_account(email="")
    with app.app_context():
        db.session.get(Account, disabled).staff_disabled = True
        db.session.commit()
        messaging.queue(db.session.get(Account, busy), MessageKind.LINK, Channel.SMS, actor=staff.get(csr_id))
    confirm(csr, "send-link-sms", 4, ids=[ok, disabled, local, busy])
    confirm(csr, "send-link-email", 2, ids=[ok, no_mail])
    with app.app_context():
        sms, mail = db.session.scalars(select(Job).order_by(Job.id)).all()
        assert bulk.run(sms) == {"changed": 1, "skipped": {
            "the account is disabled: enable it before sending a link.": 1,
            "its number is not an international mobile number: SMS needs +<country><number>.": 1,
            "the account already got 1 messages in the last 30 minutes; wait before sending again.": 1}}
        assert bulk.run(mail) == {"changed": 0, "skipped": {
            "the account already got 1 messages in the last 30 minutes; wait before sending again.": 1,
            "the account has no e-mail address: add one, or send an SMS.": 1}}


def test_a_resumed_batch_sends_once_to_the_accounts_it_had_sent_to(app, csr_id, make_account):
    sms_gateway(app)
    first, second = make_account(), make_account()
    job_id = send_job(app, csr_id)
    with app.app_context():
        actor = staff.get(csr_id)
        messaging.queue_many([first], MessageKind.LINK, Channel.SMS, actor=actor, job_id=job_id)
        again = messaging.queue_many([first, second], MessageKind.LINK, Channel.SMS, actor=actor,
                                     job_id=job_id)
        assert again.sent == [first, second] and again.refused == []
        assert sorted(db.session.scalars(select(Message.account_id))) == [first, second]
        assert db.session.get(Account, first).link_version == 1  # not moved again by the resumed run


def test_a_batch_kills_the_older_links_and_its_own_open(app, csr_id, mail_settings, make_account):
    account_id = make_account(email="links@example.com")
    older = issue_link(app, account_id)
    job_id = send_job(app, csr_id)
    with app.app_context():
        messaging.queue_many([account_id], MessageKind.LINK, Channel.EMAIL, actor=staff.get(csr_id),
                             job_id=job_id)
        newer = links.token_of(db.session.scalars(select(Message).order_by(Message.id.desc())).first())
    phone = app.test_client()
    assert phone.get(f"/m/{older}").status_code == 410
    assert phone.get(f"/m/{newer}").status_code == 200


def test_a_batch_that_loses_a_race_on_a_key_settles_it_one_account_at_a_time(
        app, csr_id, make_account, monkeypatch):
    sms_gateway(app)
    first, second = make_account(), make_account()
    job_id = send_job(app, csr_id)
    with app.app_context():
        actor = staff.get(csr_id)
        # Another worker running the same job queued the first account's message after our look-up.
        messaging.queue(db.session.get(Account, first), MessageKind.LINK, Channel.SMS, actor=actor,
                        job_id=job_id)
        monkeypatch.setattr(messaging, "_by_keys", lambda keys: set())
        batch = messaging.queue_many([first, second], MessageKind.LINK, Channel.SMS, actor=actor,
                                     job_id=job_id)
        assert batch.sent == [first, second]
        assert sorted(db.session.scalars(select(Message.account_id))) == [first, second]


def test_batches_and_single_sends_racing_for_one_account_keep_its_rate_limit(app, csr_id, make_account):
    sms_gateway(app)
    app.config["SEND_RATE_LIMIT"] = 2
    shared, other = make_account(), make_account()
    job_ids = [send_job(app, csr_id) for _ in range(3)]
    start, said = threading.Barrier(6), []

    def sender(n: int) -> None:
        with app.app_context():
            actor = staff.get(csr_id)
            start.wait(timeout=10)
            if n < 3:  # a bulk job's chunk, which locks both accounts (the shared one last)
                batch = messaging.queue_many([other, shared], MessageKind.LINK, Channel.SMS, actor=actor,
                                             job_id=job_ids[n])
                said.append(shared in batch.sent)
            else:  # a CSR's Send on the account page
                try:
                    messaging.queue(db.session.get(Account, shared), MessageKind.LINK, Channel.SMS,
                                    actor=actor)
                    said.append(True)
                except ServiceError:
                    said.append(False)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(said) == [False] * 4 + [True] * 2  # exactly the limit got through, whoever came first
    with app.app_context():
        assert db.session.scalar(select(func.count(Message.id)).where(Message.account_id == shared)) == 2
        assert db.session.get(Account, shared).link_version == 2
        assert db.session.scalar(select(func.count(Message.id)).where(Message.account_id == other)) == 2
